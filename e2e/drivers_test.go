package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolab/topo/view"
)

// lanSetup makes, inside the sandbox, a "LAN": the host's link lan0 (the
// macvlan parent, 192.168.50.10/24) is a veth whose other end is in a
// namespace of the test's, lanrouter, the LAN's router at
// 192.168.50.254/24.
const lanSetup = `set -e
ip netns add lanrouter
ip -n lanrouter link set lo up
ip link add lan0 type veth peer name eth0 netns lanrouter
ip addr add 192.168.50.10/24 dev lan0
ip link set lan0 up
ip -n lanrouter addr add 192.168.50.254/24 dev eth0
ip -n lanrouter link set eth0 up
`

// lanState is what of lanSetup's parent topo must leave as it was.
const lanState = "ip -4 -o addr show dev lan0; ip -o link show dev lan0 | sed 's/link\\/ether.*//'"

// TestMacvlan: containers on a macvlan network of a parent whose other
// side is a LAN (a namespace of the test's) get addresses of ip_range in
// order, their default route via the LAN's router, and reach each other
// by name and the router, which reaches them at their own addresses. A
// macvlan deleted by hand shows in plan and up puts it back; a change of
// mode makes them again (private: they no longer reach each other, still
// the router); down leaves the parent as it was.
func TestMacvlan(t *testing.T) {
	h := newHost(t)
	h.mustSh(lanSetup)
	before := h.mustSh(lanState)
	src := func(mode string) string {
		return `name: mv
networks:
  lan:
    driver: macvlan
    driver_opts: {parent: lan0, macvlan_mode: ` + mode + `}
    subnet: 192.168.50.0/24
    gateway: 192.168.50.254
    ip_range: 192.168.50.128/25
containers:
  a: {networks: [lan]}
  b: {networks: [lan]}
`
	}
	file := writeFile(t, "mv", src("bridge"))
	h.mustTopo("up", "-f", file)

	for ns, want := range map[string]string{"mv-a": "192.168.50.128/24", "mv-b": "192.168.50.129/24"} {
		if got := h.eth0(ns); got != want {
			t.Errorf("%s eth0: %s, want %s", ns, got, want)
		}
		if out := h.mustSh("ip -d -n " + ns + " link show eth0"); !strings.Contains(out, "macvlan mode bridge") || !strings.Contains(out, "alias topo:mv:ep:") {
			t.Errorf("%s eth0 is not topo's macvlan in bridge mode:\n%s", ns, out)
		}
		if out := h.mustSh("ip -n " + ns + " route show default"); !strings.Contains(out, "default via 192.168.50.254 dev eth0") {
			t.Errorf("%s default route: %q", ns, out)
		}
	}
	reach := func(ns, dst string, want bool) {
		t.Helper()
		out, ok := h.sh(in(ns, "ping -c1 -W2 "+dst))
		if ok != want {
			t.Errorf("ping %s from %s: reached %v, want %v\n%s", dst, ns, ok, want, out)
		}
	}
	reach("mv-a", "b", true) // by name, through topo's resolver
	reach("mv-b", "a", true)
	reach("mv-a", "192.168.50.254", true)
	reach("lanrouter", "192.168.50.128", true)
	reach("lanrouter", "192.168.50.129", true)
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes:\n%s", code, out)
	}
	var lan view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "lan", "--json")), &lan); err != nil {
		t.Fatal(err)
	}
	if lan.Driver != "macvlan" || lan.Parent != "lan0" || lan.Bridge != "" || lan.State != "up" || lan.Gateway != "192.168.50.254" || len(lan.Members) != 2 || lan.Members[0].Address != "192.168.50.128/24" {
		t.Errorf("inspect lan: %+v", lan)
	}
	if g := h.mustTopo("graph", "-f", file); !strings.Contains(g, "macvlan on lan0") {
		t.Errorf("graph does not say lan is a macvlan network:\n%s", g)
	}

	// Drift: a's macvlan deleted by hand.
	h.mustSh("ip -n mv-a link del eth0")
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "+ ip link add link lan0 name eth0 address 02:42:c0:a8:32:80 netns mv-a type macvlan mode bridge  # endpoint a/lan") {
		t.Errorf("plan after a's eth0 was deleted: exit %d\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	reach("lanrouter", "192.168.50.128", true)

	// The macvlan rule: the host does not reach its macvlans through the
	// parent; with host_link it does, through a macvlan of its own.
	reach("", "192.168.50.128", false)
	if err := os.WriteFile(file, []byte(src("bridge, host_link: true")), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	reach("", "192.168.50.128", true)
	reach("", "192.168.50.129", true)
	if out := h.mustSh("ip -4 -o addr show | grep ' mv-'"); !strings.Contains(out, "inet 192.168.50.253/32") {
		t.Errorf("the host's macvlan has not the highest free address of ip_range (.254 is the router's):\n%s", out)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after host_link: exit %d, want no changes:\n%s", code, out)
	}

	// Another mode: the macvlans are made again, in private mode.
	if err := os.WriteFile(file, []byte(src("private")), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if out := h.mustSh("ip -d -n mv-a link show eth0"); !strings.Contains(out, "macvlan mode private") {
		t.Errorf("a's eth0 after the change to private:\n%s", out)
	}
	if out := h.mustSh("ls /sys/class/net"); strings.Contains(out, "mv-") {
		t.Errorf("the host's macvlan is still there without host_link:\n%s", out)
	}
	reach("mv-a", "192.168.50.129", false)
	reach("mv-a", "192.168.50.254", true)
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the change: exit %d, want no changes:\n%s", code, out)
	}

	h.mustTopo("down", "-f", file)
	if left := h.leftovers("mv"); strings.Contains(left, "mv-") || strings.Contains(left, "topo:") || strings.Contains(left, "/") {
		t.Errorf("down left:\n%s", left)
	}
	if after := h.mustSh(lanState); after != before {
		t.Errorf("lan0 after down:\n%s\nbefore up:\n%s", after, before)
	}

	// A parent the host does not have, before any step.
	bad := writeFile(t, "mv", strings.Replace(src("bridge"), "parent: lan0", "parent: lan9", 1))
	_, errOut, code := h.topo("plan", "-f", bad)
	if code != 1 || !strings.Contains(errOut, bad+":5:5: network lan: parent lan9 does not exist on this host") {
		t.Errorf("plan with a missing parent: exit %d\n%s", code, errOut)
	}
}

// extSetup makes, inside the sandbox, a bridge of the test's, br-lab
// (10.30.0.1/24, its hardware address set, as README advises, so that
// ports coming and going do not change it and flush its neighbour table),
// with a namespace of its own already on it, old (10.30.0.2), which the
// host has talked to, and a rule of its own in FORWARD.
const extSetup = `set -e
ip link add br-lab address 02:00:0a:1e:00:01 type bridge
ip addr add 10.30.0.1/24 dev br-lab
ip link set br-lab up
ip netns add old
ip -n old link set lo up
ip link add vold type veth peer name eth0 netns old
ip link set vold master br-lab up
ip -n old addr add 10.30.0.2/24 dev eth0
ip -n old link set eth0 up
ip -n old route add default via 10.30.0.1
iptables -A FORWARD -i br-lab -m comment --comment mine -j ACCEPT
ping -c1 -W2 10.30.0.2 >/dev/null
`

const extFile = `name: ext
networks:
  lab: {external: true, name: br-lab}
containers:
  a:
    networks: [lab]
    ports: ["8080:80"]
  b: {networks: [lab]}
`

// extBridge is what of extSetup's bridge topo must leave as it was: its
// address, flags, other port, sysctls, the host's routes and the test's
// rule. Ports of topo's are listed too (none after a down).
func (h *host) extBridge() string {
	h.t.Helper()
	return h.mustSh(`ip -4 -o addr show dev br-lab; ip -o link show dev br-lab; ip -o link show dev vold; ls /sys/class/net/br-lab/brif; ` +
		`cat /proc/sys/net/ipv4/conf/br-lab/route_localnet /proc/sys/net/ipv6/conf/br-lab/disable_ipv6; ip route; iptables -S FORWARD | grep mine`)
}

// TestExternalBridge: topo's containers join a bridge the test made,
// which already has a namespace on it: they get addresses that neither
// the bridge nor its neighbour hold, reach that namespace, the host and
// each other by name, and a's publish answers through the host's
// address; plan then has nothing to do, and down leaves the
// bridge, its address, its other port and the test's rule as they were.
func TestExternalBridge(t *testing.T) {
	h := newHost(t)
	h.mustSh(extSetup)
	before := h.extBridge()
	file := writeFile(t, "ext", extFile)
	h.mustTopo("up", "-f", file)
	for ns, want := range map[string]string{"ext-a": "10.30.0.3/24", "ext-b": "10.30.0.4/24"} {
		if got := h.eth0(ns); got != want {
			t.Errorf("%s eth0: %s, want %s (.1 is the bridge's, .2 old's)", ns, got, want)
		}
		if out := h.mustSh("ip -n " + ns + " route show default"); !strings.Contains(out, "default via 10.30.0.1 dev eth0") {
			t.Errorf("%s default route: %q", ns, out)
		}
	}
	if ports := h.mustSh("ls /sys/class/net/br-lab/brif | wc -l"); strings.TrimSpace(ports) != "3" {
		t.Errorf("br-lab has %s ports, want old's and topo's two", ports)
	}
	reach := func(ns, dst string) {
		t.Helper()
		if out, ok := h.sh(in(ns, "ping -c1 -W2 "+dst)); !ok {
			t.Errorf("ping %s from %s:\n%s", dst, ns, out)
		}
	}
	reach("ext-a", "10.30.0.2")
	reach("old", "10.30.0.3")
	reach("ext-a", "b")
	reach("ext-b", "10.30.0.1")
	// a's publish, from the host through its address on the bridge.
	h.answer("ext-a", 80, "hello-a")
	h.wantReply("", "10.30.0.1", 8080, "hello-a")
	if rules := h.mustSh("iptables -S"); !strings.Contains(rules, "-A TOPO-") || !strings.Contains(rules, "-d 10.30.0.3/32 -o br-lab") || strings.Contains(rules, "-IN -o br-lab") {
		t.Errorf("topo's rules should name its containers on br-lab, not the bridge:\n%s", rules)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes:\n%s", code, out)
	}
	// A container added later skips old's address too, and a and b keep
	// theirs (the host's neighbour table has them by now).
	if err := os.WriteFile(file, []byte(extFile+"  c: {networks: [lab]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if got := h.eth0("ext-a") + " " + h.eth0("ext-b") + " " + h.eth0("ext-c"); got != "10.30.0.3/24 10.30.0.4/24 10.30.0.5/24" {
		t.Errorf("addresses after c joined: %s, want a's and b's kept and c .5", got)
	}
	reach("ext-c", "10.30.0.2")
	var lab view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "lab", "--json")), &lab); err != nil {
		t.Fatal(err)
	}
	if lab.Driver != "external" || lab.Bridge != "br-lab" || lab.State != "up" || lab.Subnet != "10.30.0.0/24" || lab.Gateway != "10.30.0.1" || len(lab.Members) != 3 {
		t.Errorf("inspect lab: %+v", lab)
	}
	h.mustTopo("down", "-f", file)
	if after := h.extBridge(); after != before {
		t.Errorf("after down:\n%s\nbefore up:\n%s", after, before)
	}
	if left := h.leftovers("ext"); strings.Contains(left, "ext-") || strings.Contains(left, "topo:") || strings.Contains(left, "/") {
		t.Errorf("down left:\n%s", left)
	}
	reach("old", "10.30.0.1")

	// The same from a Compose file: external with name.
	compose := writeFile(t, "ext", "name: ext\nservices:\n  a: {command: [sleep, \"3600\"], networks: [lab]}\nnetworks:\n  lab: {external: true, name: br-lab}\n")
	if err := os.Rename(compose, filepath.Join(filepath.Dir(compose), "compose.yaml")); err != nil {
		t.Fatal(err)
	}
	compose = filepath.Join(filepath.Dir(compose), "compose.yaml")
	h.mustTopo("up", "-f", compose)
	// Not .2 (old's), nor .3 and .4, which a and b had and the host
	// talked to: its neighbour table still has them, and topo cannot tell
	// whose they are. c's .5 the host never saw.
	if got := h.eth0("ext-a"); got != "10.30.0.5/24" {
		t.Errorf("compose: a's eth0 %s, want 10.30.0.5/24, the first the bridge's neighbours do not hold", got)
	}
	reach("ext-a", "10.30.0.2")
	h.mustTopo("down", "-f", compose)
	if after := h.extBridge(); after != before {
		t.Errorf("after the Compose file's down:\n%s\nbefore:\n%s", after, before)
	}

	// A bridge the host does not have, before any step.
	bad := writeFile(t, "ext", "name: ext\nnetworks:\n  lab: {external: true, name: br-none}\ncontainers:\n  a: {networks: [lab]}\n")
	_, errOut, code := h.topo("up", "-f", bad)
	if code != 1 || !strings.Contains(errOut, bad+":3:19: network lab: the external bridge br-none does not exist on this host") {
		t.Errorf("up with a missing bridge: exit %d\n%s", code, errOut)
	}
	if after := h.extBridge(); after != before {
		t.Errorf("after the refused up:\n%s\nbefore:\n%s", after, before)
	}
}
