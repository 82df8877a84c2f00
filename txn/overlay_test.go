package txn_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/state"
)

// overlayFile is an overlay across three hosts, from h1: the bridge, the
// VXLAN device, broadcast entries to h2 and h3 and the entries of their
// containers, beside h1's own two.
const overlayFile = `hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
  h3: { address: 192.0.2.13 }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24 }
containers:
  a: { networks: [mesh] }
  b: { networks: [mesh], ports: ["8080:80"] }
  c: { host: h2, networks: [mesh] }
  d: { host: h3, networks: [mesh] }
`

// TestOverlayRollbackAtEveryStepFake and TestOverlayRollbackAtEveryStepKernel
// are the every-step rollback proof of one host's overlay plan.
func TestOverlayRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(underlay())
	rollbackEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlayFile, 15)
}

func TestOverlayRollbackAtEveryStepKernel(t *testing.T) {
	k := realKernel(t)
	underlayLink(t, "192.0.2.11/24")
	rollbackEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlayFile, 15)
}

// TestOverlayCrashAtEveryStepFake: an up, a down and a rollback of the
// overlay crashed at each of their kernel calls are recovered.
func TestOverlayCrashAtEveryStepFake(t *testing.T) {
	k := fake.New(underlay())
	crashAtEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlayFile, nil, nil)
}

// overlay6File is IPv6 on overlays over an IPv6 underlay, from h1: a
// dual-stack overlay (its IPv6 subnet derived) and an IPv6-only one,
// with IPv6 neighbour entries, forwarding entries to IPv6 hosts, and
// the ip6tables rule that takes VXLAN from the file's hosts alone.
const overlay6File = `hosts:
  h1: { address: "2001:db8::11" }
  h2: { address: "2001:db8::12" }
  h3: { address: "2001:db8::13" }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24, enable_ipv6: true }
  six: { driver: overlay, enable_ipv4: false, subnet: "fd82::/64" }
containers:
  a: { networks: [mesh, six] }
  b: { networks: [mesh], ports: ["8080:80", "[::]:8443:443"] }
  c: { host: h2, networks: [mesh, six] }
  d: { host: h3, networks: { mesh: {}, six: { ipv6_address: "fd82::99" } } }
`

// TestOverlayIPv6RollbackAtEveryStepFake and ...Kernel are the
// every-step rollback proof of one host's IPv6 overlay plan; ...InPlace
// that of enable_ipv6 added to a running overlay.
func TestOverlayIPv6RollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(underlayAt("2001:db8::11/64"))
	rollbackEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlay6File, 20)
}

func TestOverlayIPv6RollbackAtEveryStepKernel(t *testing.T) {
	k := realKernel(t)
	underlayLink(t, "2001:db8::11/64")
	rollbackEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlay6File, 20)
}

func TestOverlayIPv6RollbackAtEveryStepInPlaceKernel(t *testing.T) {
	k := realKernel(t)
	underlayLink(t, "192.0.2.11/24")
	seed := strings.Replace(overlayFile, "subnet: 10.80.0.0/24 }", "subnet: 10.80.0.0/24 }\n  six: { driver: overlay, subnet: 10.81.0.0/24 }", 1)
	seed = strings.Replace(seed, "c: { host: h2, networks: [mesh] }", "c: { host: h2, networks: [mesh, six] }", 1)
	seed = strings.Replace(seed, "a: { networks: [mesh] }", "a: { networks: [mesh, six] }", 1)
	to := strings.Replace(seed, "subnet: 10.80.0.0/24 }", "subnet: 10.80.0.0/24, enable_ipv6: true }", 1)
	to = strings.Replace(to, "subnet: 10.81.0.0/24 }", `subnet: [10.81.0.0/24, "fd81::/64"] }`, 1)
	rollbackEveryStep(t, k, func() { mustDown(t, project(t, k)); mustUp(t, project(t, k), seed) }, to, 10)
}

// TestOverlayIPv6CrashAtEveryStepFake: the same of the IPv6 overlays.
func TestOverlayIPv6CrashAtEveryStepFake(t *testing.T) {
	k := fake.New(underlayAt("2001:db8::11/64"))
	crashAtEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlay6File, nil, nil)
}

// underlayLink puts h1's underlay address on a link of the sandbox's: a
// bridge, as this kernel has no dummy links.
func underlayLink(t *testing.T, addr string) {
	t.Helper()
	for _, c := range [][]string{{"link", "add", "under0", "type", "bridge"}, {"addr", "add", addr, "dev", "under0", "nodad"}, {"link", "set", "under0", "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "under0").Run() })
}

// TestOverlayDownRollbackAtEveryStepFake: a down of one host's overlay,
// IPv4's and IPv6's, that fails at any step rolls back to the project as
// it was.
func TestOverlayDownRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(underlay())
	downRollbackEveryStep(t, k, func() { mustDown(t, project(t, k)); mustUp(t, project(t, k), overlayFile) }, 10)
	k6 := fake.New(underlayAt("2001:db8::11/64"))
	downRollbackEveryStep(t, k6, func() { mustDown(t, project(t, k6)); mustUp(t, project(t, k6), overlay6File) }, 10)
}

// underlay is a host with h1's address on eth0.
func underlay() *state.Snapshot { return underlayAt("192.0.2.11/24") }

// underlayAt is a host with the address a (ADDR/BITS) on eth0.
func underlayAt(a string) *state.Snapshot {
	return &state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: "eth0", Kind: "veth", Up: true, MTU: 1500, Addrs: []string{a}}}}}
}
