package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/view"
)

// haveCNI reports whether Debian's CNI plugins are installed.
func haveCNI() bool {
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local"} {
		if _, err := exec.LookPath(p); err != nil {
			return false
		}
	}
	return true
}

// needCNI skips a test when Debian's CNI plugins are not installed.
func needCNI(t *testing.T) {
	t.Helper()
	if !haveCNI() {
		t.Skip("the CNI plugins are not installed (Debian: apt-get install containernetworking-plugins; scripts/deps installs it)")
	}
}

// cniBridgeFile is a CNI network of Debian's bridge and host-local
// plugins, with NAT (ipMasq), and two containers on it.
const cniBridgeFile = `name: cn
networks:
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: cni-plug0, isGateway: true, ipMasq: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.88.0.0/24 }]] } }
containers:
  a: {networks: [plug], command: ["sleep", "3600"]}
  b:
    networks:
      plug: {aliases: [bee]}
`

// TestCNIBridge: a CNI network of the bridge and host-local plugins
// gives each container an interface with an address of the chain's
// range, on the plugin's bridge; they reach each other by name and
// alias through topo's resolver, and by the hosts file; ps, inspect and
// graph show the chain's addresses; plan after up has nothing to do;
// down runs DEL for each, and leaves no CNI cache, bridge or rule.
func TestCNIBridge(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cn", cniBridgeFile)
	plan := h.mustTopo("plan", "-f", file)
	for _, want := range []string{"+ cni add plug a  # endpoint a/plug", "+ cni add plug b  # endpoint b/plug", "+ ip link add cni-plug0 type bridge"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	h.mustTopo("up", "-f", file)
	addr := map[string]string{}
	for _, ns := range []string{"cn-a", "cn-b"} {
		addr[ns] = h.eth0(ns)
		if !strings.HasPrefix(addr[ns], "10.88.0.") || !strings.HasSuffix(addr[ns], "/24") {
			t.Errorf("%s eth0: %q, want an address of 10.88.0.0/24", ns, addr[ns])
		}
	}
	if addr["cn-a"] == addr["cn-b"] {
		t.Errorf("a and b have one address, %s", addr["cn-a"])
	}
	if out := h.mustSh("ip -o link show master cni-plug0 | wc -l"); strings.TrimSpace(out) != "2" {
		t.Errorf("cni-plug0 has %s ports, want 2", out)
	}
	bAddr := strings.Split(addr["cn-b"], "/")[0]
	for _, name := range []string{"b", "bee"} {
		if out, ok := h.sh(in("cn-a", "ping -c1 -W2 "+name)); !ok || !strings.Contains(out, bAddr) {
			t.Errorf("ping %s from a (want %s): %s", name, bAddr, out)
		}
	}
	if out, ok := h.sh(in("cn-b", "ping -c1 -W2 a")); !ok {
		t.Errorf("ping a from b: %s", out)
	}
	if out := h.mustSh(in("cn-a", "getent hosts a")); !strings.Contains(out, strings.Split(addr["cn-a"], "/")[0]) {
		t.Errorf("a's hosts file does not give a its address %s: %q", addr["cn-a"], out)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes:\n%s", code, out)
	}
	if ps := h.mustTopo("ps", "-f", file); !strings.Contains(ps, addr["cn-a"]) || !strings.Contains(ps, addr["cn-b"]) {
		t.Errorf("ps does not show the chain's addresses %v:\n%s", addr, ps)
	}
	var plug view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "plug", "--json")), &plug); err != nil {
		t.Fatal(err)
	}
	if plug.Driver != "cni" || len(plug.Members) != 2 || plug.Members[0].Address != addr["cn-a"] || plug.Members[1].Address != addr["cn-b"] {
		t.Errorf("inspect plug: %+v", plug)
	}
	if g := h.mustTopo("graph", "-f", file); !strings.Contains(g, addr["cn-a"]) || !strings.Contains(g, "cni") {
		t.Errorf("graph does not show the chain's address of a:\n%s", g)
	}

	h.mustTopo("down", "-f", file)
	if out, _ := h.sh("ls -A /run/topo/cn/cni /run/topo/cn 2>&1"); !strings.Contains(out, "No such file") {
		t.Errorf("down left the CNI cache:\n%s", out)
	}
	if out, ok := h.sh("ip link show cni-plug0"); ok {
		t.Errorf("down left the chain's bridge:\n%s", out)
	}
	if out := h.mustSh("iptables-save; ip netns list"); strings.Contains(out, "CNI") || strings.Contains(out, "10.88.0") || strings.Contains(out, "cn-") {
		t.Errorf("down left rules or namespaces:\n%s", out)
	}
}

// TestCNIFailingPlugin: a chain whose last plugin has a bad config fails
// its ADD: up says the plugin's message and CNI error code, and leaves
// the kernel and topo's runtime folder as they were, the steps before it
// (a bridge network of topo's, the other container's attachment) rolled
// back and the chain's own half-done ADD undone by its DEL.
func TestCNIFailingPlugin(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cf", `name: cf
networks:
  front: {subnet: 10.42.7.0/24}
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: cni-fail0, isGateway: true, ipMasq: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.88.7.0/24 }]] } }
        - { type: bandwidth, ingressRate: -5, ingressBurst: 100000 }
containers:
  a: {networks: [front, plug], command: ["sleep", "3600"]}
  b: {networks: [plug]}
`)
	before := h.snapshot()
	_, stderr, code := h.topo("up", "-f", file)
	if code != 1 || !strings.Contains(stderr, `plugin type="bandwidth"`) || !strings.Contains(stderr, "CNI error code") {
		t.Errorf("up of a chain with a bad bandwidth config: exit %d, want 1 with the plugin's message and code:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "cni add plug a") && !strings.Contains(stderr, "cni add plug b") {
		t.Errorf("the failure does not name its step:\n%s", stderr)
	}
	if after := h.snapshot(); after != before {
		t.Errorf("a failed up changed the machine:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestCNIDriftAndInPlace: an attachment's interface deleted by hand fails
// its chain's CHECK: plan shows its DEL and ADD, and up puts it back. A
// running container joins a second CNI network and leaves it again in
// place: its command keeps running, and the other attachment stays.
//
// Without ipMasq: Debian's bridge plugin (1.1.1) finds what its DEL
// removes of NAT from the interface's addresses, and leaves the rule of
// an interface deleted by hand (README, CNI networks).
func TestCNIDriftAndInPlace(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	src := strings.Replace(cniBridgeFile, " ipMasq: true,", "", 1)
	file := writeFile(t, "cn", src)
	h.mustTopo("up", "-f", file)
	h.mustSh("ip -n cn-a link del eth0")
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "- cni del plug a  # endpoint a/plug") || !strings.Contains(plan, "+ cni add plug a  # endpoint a/plug") || strings.Contains(plan, "plug b") {
		t.Errorf("plan after a's eth0 was deleted by hand: exit %d\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := h.sh(in("cn-b", "ping -c1 -W2 a")); !ok {
		t.Errorf("ping a from b after the repair: %s", out)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the repair: exit %d\n%s", code, out)
	}

	pid := func() string { return strings.TrimSpace(h.mustSh("cat /run/topo/cn/containers/a.pid")) }
	was, bAddr := pid(), h.eth0("cn-b")
	joined := strings.Replace(src, "  a: {networks: [plug], command", `  lab:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: cni-lab0, isGateway: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.89.0.0/24 }]] } }
  a: {networks: [plug, lab], command`, 1)
	joined = strings.Replace(joined, "containers:\n  lab:", "  lab:", 1)
	joined = strings.Replace(joined, "  a: {networks: [plug, lab]", "containers:\n  a: {networks: [plug, lab]", 1)
	if err := os.WriteFile(file, []byte(joined), 0o644); err != nil {
		t.Fatal(err)
	}
	plan = h.mustTopo("plan", "-f", file)
	if !strings.Contains(plan, "+ cni add lab a  # endpoint a/lab") || strings.Contains(plan, "cni del") || strings.Contains(plan, "proc") {
		t.Errorf("plan of a joining lab:\n%s", plan)
	}
	h.mustTopo("up", "-f", file)
	if out := h.mustSh("ip -n cn-a -4 -o addr show dev eth1"); !strings.Contains(out, "10.89.0.") {
		t.Errorf("a's eth1 on lab: %s", out)
	}
	if now := pid(); now != was {
		t.Errorf("joining lab restarted a's command: pid %s, was %s", now, was)
	}
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	plan = h.mustTopo("plan", "-f", file)
	if !strings.Contains(plan, "- cni del lab a  # endpoint a/lab") || strings.Contains(plan, "cni add") {
		t.Errorf("plan of a leaving lab:\n%s", plan)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := h.sh("ip -n cn-a link show eth1; ip link show cni-lab0"); ok {
		t.Errorf("a's eth1 or lab's bridge stayed:\n%s", out)
	}
	if now := pid(); now != was {
		t.Errorf("leaving lab restarted a's command: pid %s, was %s", now, was)
	}
	if got := h.eth0("cn-b"); got != bAddr {
		t.Errorf("b's address changed: %s, was %s", got, bAddr)
	}
	if out, ok := h.sh(in("cn-a", "ping -c1 -W2 b")); !ok {
		t.Errorf("ping b from a after lab: %s", out)
	}

	// Another chain (its bridge renamed): every attachment is made
	// again on the new bridge, and the old bridge goes.
	if err := os.WriteFile(file, []byte(strings.Replace(src, "cni-plug0", "cni-plug1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := h.sh("ip link show cni-plug0"); ok {
		t.Errorf("the old bridge stayed:\n%s", out)
	}
	if out := h.mustSh("ip -o link show master cni-plug1 | wc -l"); strings.TrimSpace(out) != "2" {
		t.Errorf("cni-plug1 has %s ports, want 2", out)
	}
	h.reachByName([]string{"cn-a"}, "b")
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the new chain: exit %d\n%s", code, out)
	}
	h.mustTopo("down", "-f", file)
	if out, ok := h.sh("ip link show cni-plug1"); ok {
		t.Errorf("down left the bridge:\n%s", out)
	}
}

// reachByName pings each of names from each namespace of from.
func (h *host) reachByName(from []string, names ...string) {
	h.t.Helper()
	for _, ns := range from {
		for _, n := range names {
			if out, ok := h.sh(in(ns, "ping -c1 -W2 "+n)); !ok {
				h.t.Errorf("ping %s from %s: %s", n, ns, out)
			}
		}
	}
}

// TestCNIPtp: a chain of Debian's ptp plugin, read from a .conflist file
// as CNI runtimes read them, gives each container a veth pair to the
// host and a route through it; the containers reach each other by name,
// routed by the host, and down leaves no link or route.
func TestCNIPtp(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cp", `name: cp
networks:
  p2p:
    driver: cni
    cni: {config: 20-p2p.conflist}
containers:
  a: {networks: [p2p]}
  b: {networks: {p2p: {aliases: [bee]}}}
`)
	conflist := `{"cniVersion": "1.0.0", "name": "p2p", "plugins": [
  {"type": "ptp", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.90.0.0/24"}]]}}]}`
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "20-p2p.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.snapshot()
	h.mustTopo("up", "-f", file)
	if out := h.mustSh("ip -n cp-a -d link show eth0"); !strings.Contains(out, "veth") {
		t.Errorf("a's eth0 is no veth:\n%s", out)
	}
	if out := h.mustSh("ip route"); strings.Count(out, "10.90.0.") < 2 {
		t.Errorf("the host has no route to each container:\n%s", out)
	}
	h.reachByName([]string{"cp-a"}, "b", "bee")
	h.reachByName([]string{"cp-b"}, "a")
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d\n%s", code, out)
	}
	h.mustTopo("down", "-f", file)
	if after := h.snapshot(); after != before {
		t.Errorf("down did not leave the machine as it was:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestCNIMacvlan: a chain of Debian's macvlan plugin on a parent whose
// other side is a LAN (a namespace of the test's): the containers get
// addresses of the chain's range, reach each other by name and the
// LAN's router, which reaches them at their addresses; down leaves the
// parent as it was.
func TestCNIMacvlan(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	h.mustSh(lanSetup)
	file := writeFile(t, "cm", `name: cm
networks:
  lan:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: macvlan, master: lan0, mode: bridge,
            ipam: { type: host-local, ranges: [[{ subnet: 192.168.50.0/24, rangeStart: 192.168.50.100, rangeEnd: 192.168.50.120, gateway: 192.168.50.254 }]] } }
containers:
  a: {networks: [lan]}
  b: {networks: [lan]}
`)
	before := h.snapshot()
	h.mustTopo("up", "-f", file)
	for _, ns := range []string{"cm-a", "cm-b"} {
		if out := h.mustSh("ip -n " + ns + " -d link show eth0"); !strings.Contains(out, "macvlan mode bridge") {
			t.Errorf("%s eth0 is no macvlan in bridge mode:\n%s", ns, out)
		}
		a := strings.Split(h.eth0(ns), "/")[0]
		if !strings.HasPrefix(a, "192.168.50.1") {
			t.Errorf("%s eth0: %s, not in the chain's range", ns, a)
		}
		if out, ok := h.sh(in("lanrouter", "ping -c1 -W2 "+a)); !ok {
			t.Errorf("the LAN's router does not reach %s at %s: %s", ns, a, out)
		}
	}
	h.reachByName([]string{"cm-a"}, "b", "192.168.50.254")
	h.reachByName([]string{"cm-b"}, "a")
	// The LAN's traffic is not routed by the host: its forwarding stays off.
	if v := strings.TrimSpace(h.mustSh("sysctl -n net.ipv4.ip_forward")); v != "0" {
		t.Errorf("a macvlan chain turned ip_forward to %s, want it left at 0", v)
	}
	h.mustTopo("down", "-f", file)
	if after := h.snapshot(); after != before {
		t.Errorf("down did not leave the machine as it was:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestCNIBandwidth: a bridge chain with Debian's bandwidth plugin
// shapes what enters a container (a tbf on its host end): a bulk TCP
// transfer into it runs within 25% of ingressRate; down takes the
// shaping with the attachments.
func TestCNIBandwidth(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cb", `name: cb
networks:
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: cni-bw0, isGateway: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.88.9.0/24 }]] } }
        - { type: bandwidth, ingressRate: 10000000, ingressBurst: 200000 }
containers:
  a: {networks: [plug]}
  b: {networks: [plug]}
`)
	h.mustTopo("up", "-f", file)
	if out := h.mustSh("tc qdisc show"); !strings.Contains(out, "tbf") {
		t.Errorf("no tbf on the host ends:\n%s", out)
	}
	bAddr := strings.Split(h.eth0("cb-b"), "/")[0]
	got := h.throughput("cb-b", "cb-a", bAddr, 3*time.Second)
	if got < 10e6*0.75 || got > 10e6*1.25 {
		t.Errorf("bulk TCP into b, ingressRate 10 Mbit/s: %.0f bit/s, not within 25%%", got)
	} else {
		t.Logf("ingressRate 10000000 bit/s: measured %.0f bit/s", got)
	}
	h.mustTopo("down", "-f", file)
	if out := h.mustSh("tc qdisc show"); strings.Contains(out, "tbf") {
		t.Errorf("down left the shaping:\n%s", out)
	}
	if out, ok := h.sh("ip link show cni-bw0"); ok {
		t.Errorf("down left the bridge:\n%s", out)
	}
}

// TestCNICrashRecovery kills `topo up` and `topo down` of a file of CNI
// attachments (and a bridge network of topo's) with SIGKILL at random
// moments, chains in flight among them: the plugins die with topo, the
// recovering up undoes the interrupted step (a chain's ADD by its DEL)
// and converges, and down leaves no namespace, link, rule, lease or
// cache. TOPO_CRASH_SEED replays a run.
func TestCNICrashRecovery(t *testing.T) {
	needCNI(t)
	if testing.Short() {
		t.Skip("slow: kills topo many times")
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("TOPO_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (TOPO_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	h := newHost(t)
	var b strings.Builder
	b.WriteString(strings.Replace(cniBridgeFile, "name: cn\nnetworks:\n", "name: cn\nnetworks:\n  front: {subnet: 10.42.9.0/24}\n", 1))
	for i := range 8 {
		fmt.Fprintf(&b, "  c%d: {networks: [front, plug]}\n", i)
	}
	file := writeFile(t, "cn", b.String())
	clean := func(what string) {
		t.Helper()
		if left := h.leftovers("cn"); left != "" {
			t.Fatalf("%s left:\n%s", what, left)
		}
		if out := h.mustSh("iptables-save; ip -o link"); strings.Contains(out, "CNI") || strings.Contains(out, "cni-plug0") || strings.Contains(out, "veth") {
			t.Fatalf("%s left rules or links:\n%s", what, out)
		}
	}
	upTime, downTime := h.timed("up", "-f", file), h.timed("down", "-f", file)
	clean("down")
	landed := 0
	for i := 0; i < 10; i++ {
		verb, d := "up", upTime
		if i%2 == 1 {
			verb, d = "down", downTime
			upTime = h.timed("up", "-f", file)
		}
		delay := time.Duration(rng.Int64N(int64(d) * 9 / 10))
		at := h.killAfter(delay, "cn", verb, "-f", file)
		if strings.HasPrefix(at, "killed") && !strings.HasSuffix(at, "-") {
			landed++
		}
		if out, errOut, code := h.topo("up", "-f", file); code != 0 {
			t.Fatalf("kill %d (%s after %v, %s): up after it: exit %d\n%s\n%s", i, verb, delay, at, code, out, errOut)
		}
		if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
			t.Fatalf("kill %d (%s after %v, %s): plan after the recovering up: exit %d\n%s", i, verb, delay, at, code, out)
		}
		h.reachByName([]string{"cn-a"}, "b", "c7")
		downTime = h.timed("down", "-f", file)
		clean(fmt.Sprintf("kill %d (%s after %v, %s): down after it", i, verb, delay, at))
	}
	t.Logf("%d of 10 kills landed inside a transaction", landed)
}

// TestHandEditedCNIJournal: a journal (root's) whose CNI steps name a
// cache that is not the project's (a DEL may remove it) or a plugin
// that is a path: recovery runs neither, then up converges and down
// leaves nothing.
func TestHandEditedCNIJournal(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "jc", strings.Replace(cniBridgeFile, "name: cn", "name: jc", 1))
	h.mustSh(`mkdir -p /run/victim/cni/results && echo precious > /run/victim/cni/keep
printf '#!/bin/sh\ntouch /run/pwned\n' > /run/evil && chmod 755 /run/evil`)
	step := func(i int, cache, typ string) string {
		cfg := strings.ReplaceAll(`{"cniVersion":"1.0.0","name":"plug","plugins":[{"type":"`+typ+`"}]}`, `"`, `\"`)
		o := `"network":"plug","container":"a","netns":"jc-a","link":"eth0","content":"` + cfg + `","path":"` + cache + `"`
		return fmt.Sprintf(`{"rec":"start","i":%d,"step":{"action":"+","op":"cni-add","resource":"endpoint a/plug",%s,"undo":{"action":"-","op":"cni-del","resource":"endpoint a/plug",%s}}}
{"rec":"done","i":%d}
`, i, o, o, i)
	}
	journal := `{"rec":"begin","format":1,"verb":"up","pid":1,"time":"2026-12-03T12:00:00Z","steps":2,"i":0}
` + step(0, "/run/victim/cni", "bridge") + step(1, "/run/topo/jc/cni", "../../../run/evil")
	h.writeAs("/run/topo/jc/journal", journal, "root", "600")
	h.mustSh("chmod 700 /run/topo /run/topo/jc")
	_, errOut, code := h.topo("up", "-f", file)
	if code != 0 || !strings.Contains(errOut, "undoing it first") {
		t.Errorf("up after the hand-edited journal: exit %d\n%s", code, errOut)
	}
	if out := h.mustSh("cat /run/victim/cni/keep; ls /run"); !strings.Contains(out, "precious") || strings.Contains(out, "pwned") {
		t.Errorf("recovery removed the foreign cache or ran the plugin path:\n%s\n%s", out, errOut)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the recovery: exit %d\n%s", code, out)
	}
	h.mustTopo("down", "-f", file)
}

// TestCNIForwarding: a bridge chain with a gateway on IPv4 and IPv6
// ranges turns both families' forwarding on (the plugin would): topo does
// it first, so that its down puts back what the host had, IPv6's too.
func TestCNIForwarding(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cf", `name: cf
networks:
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: cni-cf0, isGateway: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.87.0.0/24 }], [{ subnet: "fd87::/64" }]] } }
containers:
  a: {networks: [plug]}
`)
	forwarding := func() string {
		return strings.Join(strings.Fields(h.mustSh("sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding")), " ")
	}
	if v := forwarding(); v != "0 0" {
		t.Fatalf("the sandbox forwards before up: %s", v)
	}
	before := h.snapshot()
	h.mustTopo("up", "-f", file)
	if v := forwarding(); v != "1 1" {
		t.Errorf("after up, ip_forward and IPv6 forwarding are %s, want 1 1", v)
	}
	if plan := h.mustTopo("plan", "-f", file); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after up is not empty:\n%s", plan)
	}
	h.mustTopo("down", "-f", file)
	if v := forwarding(); v != "0 0" {
		t.Errorf("after down, ip_forward and IPv6 forwarding are %s, want the host's 0 0 back", v)
	}
	if after := h.snapshot(); after != before {
		t.Errorf("down did not leave the machine as it was:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestCNIDownRollsBack: a down that fails at any of its steps (the
// test-only TOPO_FAULT_AT hook) rolls back; the attachments its DELs
// removed come back with the addresses and hardware addresses they had,
// not the IPAM's next ones, so the containers reach each other by name
// and by the addresses the hosts files give, and the chain's masquerade
// rules are back. The first down that is not failed leaves nothing.
func TestCNIDownRollsBack(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cn", cniBridgeFile)
	h.mustTopo("up", "-f", file)
	type attachment struct{ addr, mac string }
	attachments := func() map[string]attachment {
		out := map[string]attachment{}
		for _, ns := range []string{"cn-a", "cn-b"} {
			out[ns] = attachment{h.eth0(ns), strings.TrimSpace(h.mustSh(in(ns, "cat /sys/class/net/eth0/address")))}
		}
		return out
	}
	masq := func() int { return strings.Count(h.mustSh("iptables -t nat -S POSTROUTING"), "CNI-") }
	was, rules := attachments(), masq()
	if rules != 2 {
		t.Fatalf("POSTROUTING has %d rules of the chain's, want 2:\n%s", rules, h.mustSh("iptables -t nat -S POSTROUTING"))
	}
	failed := 0
	for at := 1; ; at++ {
		_, errOut, code := h.topoEnv([]string{fmt.Sprintf("TOPO_FAULT_AT=%d", at)}, "down", "-f", file)
		if code == 0 {
			break
		}
		// A step that stopped a's command is undone by starting it
		// again, as a new process: the one difference a rollback names.
		asItWas := strings.Contains(errOut, "the kernel is as it was") ||
			strings.Contains(errOut, "in 1 way: the command of container a was restarted")
		if code != 1 || !strings.Contains(errOut, "fault injected") || !asItWas {
			t.Fatalf("down with a fault at step %d: exit %d\n%s", at, code, errOut)
		}
		failed++
		if now := attachments(); now["cn-a"] != was["cn-a"] || now["cn-b"] != was["cn-b"] {
			t.Errorf("after the rollback of a fault at step %d the attachments are %v, were %v", at, now, was)
		}
		if n := masq(); n != rules {
			t.Errorf("after the rollback of a fault at step %d POSTROUTING has %d rules of the chain's, want %d", at, n, rules)
		}
		h.reachByName([]string{"cn-a"}, "b", "bee")
		h.reachByName([]string{"cn-b"}, "a")
		if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
			t.Errorf("plan after the rollback of a fault at step %d: exit %d\n%s", at, code, out)
		}
	}
	if failed < 10 {
		t.Errorf("only %d of down's steps were failed", failed)
	}
	t.Logf("failed and rolled back each of down's %d steps", failed)
	if left := h.leftovers("cn"); left != "" {
		t.Errorf("down left:\n%s", left)
	}
	if out := h.mustSh("iptables-save; ip -o link"); strings.Contains(out, "CNI") || strings.Contains(out, "cni-plug0") || strings.Contains(out, "veth") {
		t.Errorf("down left rules or links:\n%s", out)
	}
}
