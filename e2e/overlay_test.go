package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/internal/hosts"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/names"
)

// newWorld makes hosts h1 and h2 (192.0.2.11 and .12 on the underlay)
// in a sandbox of the test's own (internal/hosts).
func newWorld(t *testing.T, more ...string) (*hosts.World, map[string]*host) {
	t.Helper()
	return newWorldAt(t, append([]string{"h1=192.0.2.11/24", "h2=192.0.2.12/24"}, more...)...)
}

// newWorldAt makes the hosts of addrs (NAME=ADDR/BITS each).
func newWorldAt(t *testing.T, addrs ...string) (*hosts.World, map[string]*host) {
	t.Helper()
	w := hosts.New(t, sandbox.New(t), addrs...)
	out := map[string]*host{}
	for _, a := range addrs {
		name, _, _ := strings.Cut(a, "=")
		out[name] = &host{commander: w.Host(name), t: t}
		out[name].bridgeNetfilter()
	}
	return w, out
}

const overlayFile = `name: ov
hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
networks:
  mesh:
    driver: overlay
    subnet: 10.80.0.0/24
    vni: 4242
containers:
  a: { host: h1, networks: [mesh] }
  b: { host: h2, networks: [mesh], ports: ["8080:80"] }
  local: { networks: [mesh] }
`

// TestOverlayAcrossHosts: a on h1 and b on h2 reach each other by name
// over TCP and UDP through the overlay, and so does local (the first
// host's, by default); b's publish answers on h2's address only; a
// deleted forwarding entry is drift that up repairs; plan --host shows
// another host's part and changes nothing; down on h1 leaves h1 clean
// and h2 as it was.
func TestOverlayAcrossHosts(t *testing.T) {
	_, hs := newWorld(t)
	h1, h2 := hs["h1"], hs["h2"]
	file := writeFile(t, "ov", overlayFile)

	// h1 finds itself by its address; h2 is named.
	h1.mustTopo("up", "-f", file)
	h2.mustTopo("up", "-f", file, "--host", "h2")
	if out := h1.mustSh("ip netns list"); strings.Contains(out, "ov-b") || !strings.Contains(out, "ov-a") || !strings.Contains(out, "ov-local") {
		t.Errorf("h1's namespaces:\n%s", out)
	}
	if out := h2.mustSh("ip netns list"); strings.Contains(out, "ov-a") || !strings.Contains(out, "ov-b") {
		t.Errorf("h2's namespaces:\n%s", out)
	}
	vx := names.VXLAN("ov", "mesh")
	if out := h1.mustSh("ip -d link show " + vx); !strings.Contains(out, "vxlan id 4242") || !strings.Contains(out, "local 192.0.2.11") ||
		!strings.Contains(out, "dstport 4789") || !strings.Contains(out, "nolearning") || !strings.Contains(out, "mtu 1450") {
		t.Errorf("h1's vxlan device:\n%s", out)
	}

	h1.agentServe("ov-a", "a", 80)
	h1.agentServe("ov-local", "local", 80)
	h2.agentServe("ov-b", "b", 80)
	h1.expect([]check{
		{From: "ov-a", Proto: "tcp", Addr: "b:80", Want: "b"},
		{From: "ov-a", Proto: "udp", Addr: "b:80", Want: "b"},
		{From: "ov-local", Proto: "tcp", Addr: "b:80", Want: "b"},
		{From: "ov-a", Proto: "tcp", Addr: "local:80", Want: "local"},
		// b's publish is h2's: not on h1's address.
		{From: "", Proto: "tcp", Addr: "192.0.2.12:8080", Want: "b"},
		{From: "", Proto: "tcp", Addr: "192.0.2.11:8080"},
	})
	h2.expect([]check{
		{From: "ov-b", Proto: "tcp", Addr: "a:80", Want: "a"},
		{From: "ov-b", Proto: "udp", Addr: "a:80", Want: "a"},
		{From: "ov-b", Proto: "udp", Addr: "local:80", Want: "local"},
		{From: "", Proto: "tcp", Addr: "192.0.2.12:8080", Want: "b"},
	})

	// Which host each container is on.
	if out := h1.mustTopo("ps", "-f", file); !strings.Contains(out, "HOST") || !regexp.MustCompile(`h2\s+b\s+remote\s`).MatchString(out) || !regexp.MustCompile(`h1\s+a\s+up\s`).MatchString(out) {
		t.Errorf("ps on h1:\n%s", out)
	}
	if out := h1.mustTopo("graph", "-f", file); !strings.Contains(out, "subgraph cluster_h2") || !strings.Contains(out, "ctr_b -- net_mesh") {
		t.Errorf("graph on h1:\n%s", out)
	}

	// Drift: a forwarding entry deleted by hand.
	h1.mustSh("bridge fdb del 00:00:00:00:00:00 dev " + vx + " dst 192.0.2.12 self")
	out, _, code := h1.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "bridge fdb append 00:00:00:00:00:00 dev "+vx+" dst 192.0.2.12 self permanent") {
		t.Errorf("plan after the entry went: exit %d\n%s", code, out)
	}
	h1.mustTopo("up", "-f", file)
	if _, _, code := h1.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up repaired the entry: exit %d, want 0", code)
	}

	// Another host's part, planned here against nothing, changes nothing.
	before := h1.snapshot()
	out = h1.mustTopo("plan", "-f", file, "--host", "h2")
	if !strings.Contains(out, "ip netns add ov-b") || strings.Contains(out, "ov-a") || !strings.Contains(out, "local 192.0.2.12") {
		t.Errorf("plan --host h2 on h1:\n%s", out)
	}
	if after := h1.snapshot(); after != before {
		t.Errorf("plan --host h2 changed h1 (-before +after):\n%s", cmp.Diff(before, after))
	}
	// up of another host's part is refused.
	if _, errOut, code := h1.topo("up", "-f", file, "--host", "h2"); code == 0 || !strings.Contains(errOut, "does not have host h2's address") {
		t.Errorf("up --host h2 on h1: exit %d\n%s", code, errOut)
	}

	h1.mustTopo("down", "-f", file)
	assertClean(t, h1, "ov")
	if _, _, code := h2.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("h2's plan after down on h1: exit %d, want 0", code)
	}
	h2.expect([]check{{From: "", Proto: "tcp", Addr: "192.0.2.12:8080", Want: "b"}})
	h2.mustTopo("down", "-f", file)
	assertClean(t, h2, "ov")
}

// TestOverlaysIsolatedAcrossHosts: two overlays (their own VNIs) spanning
// both hosts, and a bridge network on h1: each overlay's containers reach
// each other across the hosts, and nothing of another network, on either
// host.
func TestOverlaysIsolatedAcrossHosts(t *testing.T) {
	// h3 is on the underlay but not in the file.
	_, hs := newWorld(t, "h3=192.0.2.13/24")
	h1, h2, h3 := hs["h1"], hs["h2"], hs["h3"]
	file := writeFile(t, "two", `name: two
hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
networks:
  red: { driver: overlay, subnet: 10.81.0.0/24 }
  blue: { driver: overlay, subnet: 10.82.0.0/24 }
  lan: { subnet: 10.83.0.0/24 }
containers:
  r1: { host: h1, networks: [red] }
  r2: { host: h2, networks: [red] }
  b1: { host: h1, networks: [blue] }
  b2: { host: h2, networks: [blue] }
  l1: { host: h1, networks: [lan] }
`)
	h1.mustTopo("up", "-f", file)
	h2.mustTopo("up", "-f", file)
	if out := h1.mustSh("ip -d link show type vxlan"); strings.Count(out, "vxlan id ") != 2 {
		t.Errorf("h1's vxlan devices:\n%s", out)
	}
	b2 := serveNames(served{h1, "two-r1", "r1"}, served{h2, "two-r2", "r2"}, served{h1, "two-b1", "b1"}, served{h2, "two-b2", "b2"}, served{h1, "two-l1", "l1"})[3]
	h1.expect([]check{
		{From: "two-r1", Proto: "tcp", Addr: "r2:80", Want: "r2"},
		{From: "two-b1", Proto: "tcp", Addr: "b2:80", Want: "b2"},
		// By address: names of other networks do not resolve.
		{From: "two-r1", Proto: "tcp", Addr: "10.82.0.3:80"}, // b2
		{From: "two-r1", Proto: "udp", Addr: "10.82.0.3:80"},
		{From: "two-r1", Proto: "tcp", Addr: "10.82.0.2:80"}, // b1
		{From: "two-l1", Proto: "tcp", Addr: "10.81.0.3:80"}, // r2
		{From: "two-b1", Proto: "tcp", Addr: "10.83.0.2:80"}, // l1
	})
	// Unanswered is not enough across hosts (h1 masquerades to a gateway
	// address that h2's bridge holds too, which takes the answer): r1's
	// datagram must not have reached b2 at all.
	if b2.heardProbe("3") {
		t.Errorf("b2 on h2 got r1's datagram (probe 3): red reached blue across the hosts")
	}
	h2.expect([]check{
		{From: "two-r2", Proto: "udp", Addr: "r1:80", Want: "r1"},
		{From: "two-b2", Proto: "tcp", Addr: "10.81.0.2:80"}, // r1
		{From: "two-b2", Proto: "tcp", Addr: "10.81.0.3:80"}, // r2
	})
	// VXLAN is taken only from the file's hosts: h2's packets passed
	// (above), h3's are dropped.
	if n := vxlanDrops(t, h1, "iptables"); n != 0 {
		t.Errorf("h1 dropped %d VXLAN packets of the file's hosts", n)
	}
	h3.expect([]check{{From: "", Proto: "udp", Addr: "192.0.2.11:4789"}})
	if n := vxlanDrops(t, h1, "iptables"); n == 0 {
		t.Errorf("h1 dropped none of h3's VXLAN packets")
	}
	h1.mustTopo("down", "-f", file)
	h2.mustTopo("down", "-f", file)
	assertClean(t, h1, "two")
	assertClean(t, h2, "two")
}

// TestUpAllHosts: up --all-hosts on h1 brings up every host's part over
// ssh (a stand-in that enters the host's namespaces), from one file on
// h1; down --all-hosts takes all down. A failure injected on h2 during
// up --all-hosts rolls back h1 too: both are left clean.
func TestUpAllHosts(t *testing.T) {
	w, hs := newWorld(t)
	h1, h2 := hs["h1"], hs["h2"]
	file := writeFile(t, "ov", overlayFile)
	all := func(args ...string) (string, int) {
		t.Helper()
		return allHosts(t, w, args...)
	}
	out, code := all("up", "--all-hosts", "-f", file)
	if code != 0 || !strings.Contains(out, "== h1 (192.0.2.11): up") || !strings.Contains(out, "== h2 (192.0.2.12): up") {
		t.Fatalf("up --all-hosts: exit %d\n%s", code, out)
	}
	h2.agentServe("ov-b", "b", 80)
	h1.expect([]check{{From: "ov-a", Proto: "tcp", Addr: "b:80", Want: "b"}})
	out, code = all("down", "--all-hosts", "-f", file)
	if code != 0 {
		t.Fatalf("down --all-hosts: exit %d\n%s", code, out)
	}
	assertClean(t, h1, "ov")
	assertClean(t, h2, "ov")

	w.SSHEnv("h2", "TOPO_FAULT_AT=4")
	out, code = all("up", "--all-hosts", "-f", file)
	t.Logf("up --all-hosts with h2 failing:\n%s", out)
	if code == 0 || !strings.Contains(out, "up failed on h2") || !strings.Contains(out, "rolled back h1") {
		t.Errorf("up --all-hosts with h2 failing: exit %d\n%s", code, out)
	}
	assertClean(t, h1, "ov")
	assertClean(t, h2, "ov")
}

// allHosts runs topo with args on h1, with the world's ssh stand-in
// first on PATH and topo on it: for --all-hosts. It returns the output
// and the exit status.
func allHosts(t *testing.T, w *hosts.World, args ...string) (string, int) {
	t.Helper()
	cmd := w.Host("h1").Command(topoBin, args...)
	cmd.Env = append(os.Environ(), "PATH="+w.SSH()+":"+filepath.Dir(topoBin)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// served is a container of a host whose agent answers its name.
type served struct {
	h        *host
	ns, name string
}

// serveNames starts the agents of ss, on port 80, and returns them in
// the order of ss.
func serveNames(ss ...served) []*server {
	out := make([]*server, len(ss))
	for i, s := range ss {
		out[i] = s.h.agentServe(s.ns, s.name, 80)
	}
	return out
}

// vxlanDrops is the packet count of h's rule that drops VXLAN from
// machines not in the file, in the tables of tool (iptables, or
// ip6tables for an IPv6 underlay).
func vxlanDrops(t *testing.T, h *host, tool string) int {
	t.Helper()
	for _, line := range strings.Split(h.mustSh(tool+" -t filter -L TOPO-INPUT -v -x -n"), "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.Contains(line, "udp dpt:4789") && f[2] == "DROP" {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("TOPO-INPUT: %q", line)
			}
			return n
		}
	}
	t.Fatalf("no VXLAN rule in %s's TOPO-INPUT:\n%s", tool, h.mustSh(tool+" -t filter -S TOPO-INPUT"))
	return 0
}
