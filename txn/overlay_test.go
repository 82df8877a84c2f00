package txn_test

import (
	"os/exec"
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
	// The underlay address on a link of the sandbox's: a bridge, as
	// this kernel has no dummy links.
	for _, c := range [][]string{{"link", "add", "under0", "type", "bridge"}, {"addr", "add", "192.0.2.11/24", "dev", "under0"}, {"link", "set", "under0", "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "under0").Run() })
	rollbackEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlayFile, 15)
}

// TestOverlayCrashAtEveryStepFake: an up, a down and a rollback of the
// overlay crashed at each of their kernel calls are recovered.
func TestOverlayCrashAtEveryStepFake(t *testing.T) {
	k := fake.New(underlay())
	crashAtEveryStep(t, k, func() { mustDown(t, project(t, k)) }, overlayFile, nil, nil)
}

// TestOverlayDownRollbackAtEveryStepFake: a down of one host's overlay
// that fails at any step rolls back to the project as it was.
func TestOverlayDownRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(underlay())
	downRollbackEveryStep(t, k, func() { mustDown(t, project(t, k)); mustUp(t, project(t, k), overlayFile) }, 10)
}

// underlay is a host with h1's address on eth0.
func underlay() *state.Snapshot {
	return &state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: "eth0", Kind: "veth", Up: true, MTU: 1500, Addrs: []string{"192.0.2.11/24"}}}}}
}
