package e2e

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/names"
)

// bridgeOf finds the bridge that carries addr on the host.
func (h *host) bridgeWith(addr string) ipLink {
	h.t.Helper()
	for _, l := range h.links("") {
		for _, a := range l.ipv4() {
			if a == addr {
				return l
			}
		}
	}
	h.t.Fatalf("no host link carries %s:\n%s", addr, h.mustSh("ip -o addr"))
	return ipLink{}
}

func (h *host) eth0(ns string) string {
	h.t.Helper()
	for _, l := range h.links(ns) {
		if l.Name == "eth0" {
			if a := l.ipv4(); len(a) == 1 {
				return a[0]
			}
		}
	}
	h.t.Fatalf("%s has no single eth0 address:\n%s", ns, h.mustSh("ip -n "+ns+" addr"))
	return ""
}

// TestThreeContainersOnOneNetwork is the core acceptance: addresses, bridge,
// ports, traffic, idempotence, drift repair and a clean down.
func TestThreeContainersOnOneNetwork(t *testing.T) {
	h := newHost(t)
	file := example("three")
	h.mustTopo("up", "-f", file)

	want := map[string]string{"a": "172.30.0.2/24", "b": "172.30.0.3/24", "c": "172.30.0.4/24"}
	for c, addr := range want {
		ns := "three-" + c
		if got := h.eth0(ns); got != addr {
			t.Errorf("%s: eth0 has %s, want %s", c, got, addr)
		}
		var names []string
		for _, l := range h.links(ns) {
			names = append(names, l.Name)
		}
		sort.Strings(names)
		if d := cmp.Diff([]string{"eth0", "lo"}, names); d != "" {
			t.Errorf("%s links (-want +got):\n%s", c, d)
		}
		// IPv4-only networks, as Docker's: eth0 has no IPv6 (no
		// link-local address), lo keeps ::1.
		if out := h.mustSh("ip -n " + ns + " -6 -o addr show"); strings.Contains(out, "eth0") || !strings.Contains(out, "::1/128") {
			t.Errorf("%s IPv6 addresses, want ::1 on lo only:\n%s", c, out)
		}
	}
	br := h.bridgeWith("172.30.0.1/24")
	ports := 0
	for _, l := range h.links("") {
		if l.Master == br.Name {
			ports++
		}
	}
	if ports != 3 {
		t.Errorf("bridge %s has %d ports, want 3", br.Name, ports)
	}
	// The host ends are bridge ports without addresses of their own,
	// IPv6 link-local ones included.
	for _, l := range h.links("") {
		if l.Master != br.Name {
			continue
		}
		if out := h.mustSh("ip -6 -o addr show dev " + l.Name); strings.TrimSpace(out) != "" {
			t.Errorf("bridge port %s has IPv6 addresses:\n%s", l.Name, out)
		}
	}
	// Containers reach each other; the host reaches them.
	h.mustSh("ip netns exec three-a ping -c1 -w10 172.30.0.3 && ip netns exec three-b ping -c1 -w10 172.30.0.4 && ip netns exec three-c ping -c1 -w10 172.30.0.2")
	h.mustSh("ping -c1 -w10 172.30.0.2 && ping -c1 -w10 172.30.0.4")
	// topo exec runs in the container.
	if out := h.mustTopo("exec", "-f", file, "b", "--", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "172.30.0.3/24") {
		t.Errorf("topo exec b: %s", out)
	}

	// A second up changes nothing.
	if out := h.mustTopo("up", "-f", file); !strings.Contains(out, "nothing to do") {
		t.Errorf("second up: %s", out)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan --detailed-exitcode after up: exit %d, want 0", code)
	}

	// A veth deleted by hand is drift: plan shows it, up repairs it.
	veth := names.Veth("three", "b", "lan")
	h.mustSh("ip link del " + veth)
	out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "+ ip link add "+veth) {
		t.Errorf("plan after deleting %s: exit %d\n%s", veth, code, out)
	}
	h.mustTopo("up", "-f", file)
	if got := h.eth0("three-b"); got != "172.30.0.3/24" {
		t.Errorf("repaired b has %s", got)
	}
	h.mustSh("ip netns exec three-a ping -c1 -w10 172.30.0.3")

	// Down leaves nothing of the project, and nothing else goes with it:
	// a file someone put beside topo's in a container's /etc/netns folder
	// stays, alone.
	h.mustSh("echo mine > /etc/netns/three-a/gai.conf")
	h.mustTopo("down", "-f", file)
	if out := h.mustSh("ls /etc/netns/three-a"); strings.TrimSpace(out) != "gai.conf" {
		t.Errorf("/etc/netns/three-a after down holds %q, want only gai.conf", out)
	}
	h.mustSh("rm -r /etc/netns/three-a")
	assertClean(t, h, "three")
}

// assertClean fails when the host holds anything of the project.
func assertClean(t *testing.T, h *host, project string) {
	t.Helper()
	if out := h.mustSh("ip netns list"); strings.Contains(out, project+"-") {
		t.Errorf("namespaces left:\n%s", out)
	}
	if out := h.mustSh("ip -d link show"); strings.Contains(out, "topo:"+project+":") {
		t.Errorf("links left:\n%s", out)
	}
	if out, _ := h.sh("ls /run/topo/" + project + " /etc/netns 2>/dev/null"); strings.Contains(out, project) {
		t.Errorf("files left:\n%s", out)
	}
	// No process of the project runs on: down waits for its resolver to
	// end, while it deletes the namespaces. (An ended process has no
	// command line, even before it is reaped.)
	// Only this machine's: the hosts of a multi-host test share one PID
	// namespace, each its own mount namespace.
	procs := h.mustSh(`me=$(readlink /proc/self/ns/mnt); for p in /proc/[0-9]*; do [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$me" ] || continue; tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done`)
	for _, line := range strings.Split(procs, "\n") {
		if strings.Contains(line, "resolver serve --dir /run/topo/"+project+" ") {
			t.Errorf("the resolver still runs: %s", line)
		}
	}
}

func TestPlanExitCodesAndSmallChanges(t *testing.T) {
	h := newHost(t)
	base := `name: lab
networks:
  lan: {subnet: 10.9.0.0/24}
containers:
  a: {networks: [lan]}
  b: {networks: [lan]}
  c: {networks: [lan]}
`
	file := writeFile(t, "lab", base)
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 2 {
		t.Errorf("plan before up: exit %d, want 2", code)
	}
	h.mustTopo("up", "-f", file)
	// Remove b: only b's objects go; a and c keep their addresses.
	os.WriteFile(file, []byte(strings.Replace(base, "  b: {networks: [lan]}\n", "", 1)), 0o644)
	out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan after removing b: exit %d\n%s", code, out)
	}
	for _, line := range stepLines(out) {
		if !strings.Contains(line, "# container b") && !strings.Contains(line, "# endpoint b/") && !strings.Contains(line, "resolver load -p lab  # dns resolver") {
			t.Errorf("removing b plans %q", line)
		}
	}
	h.mustTopo("up", "-f", file)
	if out, _ := h.sh("ip netns list"); strings.Contains(out, "lab-b") {
		t.Errorf("lab-b still there:\n%s", out)
	}
	// Add d: only d's objects; it takes the lowest free address (b's old).
	os.WriteFile(file, []byte(strings.Replace(base, "  b: {networks: [lan]}\n", "  d: {networks: [lan]}\n", 1)), 0o644)
	out = h.mustTopo("plan", "-f", file)
	for _, line := range stepLines(out) {
		if !strings.Contains(line, "# container d") && !strings.Contains(line, "# endpoint d/") && !strings.Contains(line, "resolver load -p lab  # dns resolver") {
			t.Errorf("adding d plans %q", line)
		}
	}
	h.mustTopo("up", "-f", file)
	got := map[string]string{"a": h.eth0("lab-a"), "c": h.eth0("lab-c"), "d": h.eth0("lab-d")}
	if d := cmp.Diff(map[string]string{"a": "10.9.0.2/24", "c": "10.9.0.4/24", "d": "10.9.0.3/24"}, got); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}
	// down -p works without the file.
	os.Remove(file)
	h.mustTopo("down", "-p", "lab")
	assertClean(t, h, "lab")
}

var stepRE = regexp.MustCompile(`^\s+[-+~] `)

func stepLines(plan string) []string {
	var out []string
	for _, l := range strings.Split(plan, "\n") {
		if stepRE.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

func TestBadFileChangesNothing(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "bad", `name: bad
networks:
  lan: {subnet: 10.1.0.0/24}
containers:
  a:
    networks:
      lan: {ipv4_address: 10.2.0.5}
  b: {networks: [wan]}
`)
	before := h.snapshot()
	_, errOut, code := h.topo("up", "-f", file)
	if code != 1 {
		t.Errorf("up of a bad file: exit %d", code)
	}
	for _, want := range []string{file + ":7:", file + ":8:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("kernel changed:\n%s", cmp.Diff(before, after))
	}
}

func TestForeignObjectsSurvive(t *testing.T) {
	h := newHost(t)
	// Objects topo did not make, some with names close to topo's.
	h.mustSh(`ip netns add three-x && ip netns add mine && ip link add br-user type bridge &&
ip link add veth0user type veth peer name veth1user && ip addr add 192.0.2.1/24 dev br-user &&
iptables -A INPUT -s 198.51.100.7 -j DROP -m comment --comment "not topo"`)
	before := h.snapshot()
	file := example("three")
	h.mustTopo("up", "-f", file)
	h.mustTopo("down", "-f", file)
	if after := h.snapshot(); after != before {
		t.Errorf("foreign objects changed (-before +after):\n%s", cmp.Diff(before, after))
	}
	// A namespace topo needs, held by someone else, is an error before any step.
	h.mustSh("ip netns add three-a")
	before = h.snapshot()
	_, errOut, code := h.topo("up", "-f", file)
	if code != 1 || !strings.Contains(errOut, "three-a already exists") {
		t.Errorf("collision: exit %d, stderr:\n%s", code, errOut)
	}
	if after := h.snapshot(); after != before {
		t.Errorf("collision changed the kernel (-before +after):\n%s", cmp.Diff(before, after))
	}
}

func TestTwoProjectsGetSeparateSubnets(t *testing.T) {
	h := newHost(t)
	// The host already uses 172.17.0.0/16, as Docker's docker0 would.
	h.mustSh("ip link add hostbr0 type bridge && ip addr add 172.17.0.1/16 dev hostbr0 && ip link set hostbr0 up")
	one := writeFile(t, "one", "containers:\n  x: {}\n  y: {}\n")
	two := writeFile(t, "two", "containers:\n  x: {}\n")
	h.mustTopo("up", "-f", one)
	h.mustTopo("up", "-f", two)
	if a, b := h.eth0("one-x"), h.eth0("two-x"); a != "172.18.0.2/16" || b != "172.19.0.2/16" {
		t.Errorf("one-x=%s two-x=%s, want 172.18.0.2/16 and 172.19.0.2/16", a, b)
	}
	// Each project reaches its own containers by its own bridge.
	h.mustSh("ip netns exec one-x ping -c1 -w10 172.18.0.3")
	h.mustTopo("down", "-f", one)
	h.mustTopo("down", "-f", two)
	assertClean(t, h, "one")
	assertClean(t, h, "two")
}

// TestTwoNetworksExample brings up examples/twonets: IPAM-picked subnets,
// a router on both networks with eth0 and eth1 in file order.
func TestTwoNetworksExample(t *testing.T) {
	h := newHost(t)
	file := example("twonets")
	h.mustTopo("up", "-f", file)
	got := map[string]string{}
	for _, l := range h.links("twonets-router") {
		if a := l.ipv4(); len(a) == 1 && l.Name != "lo" {
			got[l.Name] = a[0]
		}
	}
	want := map[string]string{"eth0": "172.17.0.2/16", "eth1": "172.18.0.2/16"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("router addresses (-want +got):\n%s", d)
	}
	if a, b := h.eth0("twonets-alice"), h.eth0("twonets-bob"); a != "172.17.0.3/16" || b != "172.18.0.3/16" {
		t.Errorf("alice=%s bob=%s", a, b)
	}
	h.mustSh("ip netns exec twonets-router ping -c1 -w10 172.17.0.3 && ip netns exec twonets-router ping -c1 -w10 172.18.0.3")
	// The router's default route goes via its first network.
	if out := h.mustSh("ip -n twonets-router route show default"); !strings.Contains(out, "via 172.17.0.1 dev eth0") {
		t.Errorf("router default route: %s", out)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d", code)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "twonets")
}
