package txn_test

import (
	"cmp"
	"os"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// cniFile puts containers on a CNI network of the bridge and host-local
// plugins (with ipMasq's rules), one of them on a bridge network of
// topo's too.
const cniFile = `
name: rb
networks:
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: rb-cni0, isGateway: true, ipMasq: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.97.0.0/24 }]] } }
  front: {subnet: 10.99.1.0/24}
containers:
  a:
    networks: [front, plug]
    command: ["sleep", "3600"]
  b: {networks: {plug: {aliases: [bee]}}}
  c: {networks: [front], command: ["sleep", "3600"]}
`

// cniInPlace connect a running container to, and disconnect one from,
// cniFile's CNI network.
var cniInPlace = []change{
	{"cni-connect", "c: {networks: [front]", "c: {networks: [front, plug]"},
	{"cni-disconnect", "networks: [front, plug]", "networks: [front]"},
}

// TestCNIRollbackAtEveryStepFake: an up of a CNI network that fails at
// any step rolls back to the machine as it was; one that crashes at any
// call converges with the next up and leaves nothing after a down.
func TestCNIRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	rollbackEveryStep(t, k, toEmpty(t, k), cniFile, 10)
}

func TestCNICrashAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	crashAtEveryStep(t, k, toEmpty(t, k), cniFile, nil, nil)
}

// TestCNIRollbackAtEveryStepKernel: the same on the real kernel, with
// Debian's plugins: each failure's rollback runs the chains' DELs in
// reverse, and leaves no attachment, cache, bridge or rule.
func TestCNIRollbackAtEveryStepKernel(t *testing.T) {
	k := cniKernel(t)
	rollbackEveryStep(t, k, toEmpty(t, k), cniFile, 10)
}

// TestCNIDownRollbackAtEveryStep: a down that fails at any step puts
// back each attachment its DELs removed as it was, with its addresses
// and hardware address (not the IPAM's next ones).
func TestCNIDownRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	downRollbackEveryStep(t, k, toFile(t, k, cniFile), 5)
}

// On the kernel, Debian's bridge plugin names the host end of each veth
// an ADD makes anew, and the rule that masquerades the attachment goes
// after topo's jump (see cniChurn).
func TestCNIDownRollbackAtEveryStepKernel(t *testing.T) {
	k := cniKernel(t)
	downRollbackEveryStep(t, k, toFile(t, k, cniFile), 5, cniChurn)
}

// TestCNIInPlace: connecting a running container to a CNI network, or
// disconnecting it, that fails at any step rolls back as it was; one
// that crashes converges with the next up (see inPlaceProofs).
func TestCNIInPlaceRollbackAtEveryStepFake(t *testing.T) {
	inPlaceProofs(t, fake.New(nil), cniFile, cniInPlace, false)
}

func TestCNIInPlaceRollbackAtEveryStepKernel(t *testing.T) {
	inPlaceProofs(t, cniKernel(t), cniFile, cniInPlace, false, cniChurn)
}

func TestCNIInPlaceCrashAtEveryStepFake(t *testing.T) {
	inPlaceProofs(t, fake.New(nil), cniFile, cniInPlace, true)
}

func TestCNIInPlaceCrashKernel(t *testing.T) {
	inPlaceProofs(t, cniKernel(t), cniFile, cniInPlace, true)
}

// cniChurn compares snapshots as they are after a rollback that ran a
// CNI ADD again to put back what a DEL removed. The attachment comes back
// with its addresses and hardware address (the rollback asks for them),
// but the bridge plugin gives the host end of its veth a new random name
// and MAC, and appends the attachment's masquerade rule to POSTROUTING,
// after topo's jump where it was before it: the host ends of veths on
// bridges not topo's are compared without name or MAC, and topo's
// per-project jumps in built-in chains by their order, not their
// position among others' rules (which does not change what they match;
// see firewall.ClampInserts). Shared jumps keep their positions.
var cniChurn = gocmp.Options{
	gocmp.Transformer("unnamedForeignVeths", func(ls []state.Link) []state.Link {
		out := slices.Clone(ls)
		for i, l := range out {
			if l.Kind == "veth" && l.Alias == "" && l.Master != "" {
				out[i].Name, out[i].MAC = "", ""
			}
		}
		slices.SortStableFunc(out, func(a, b state.Link) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Master, b.Master))
		})
		return out
	}),
	gocmp.Transformer("projectJumpsInOrder", func(rs []state.FwRule) []state.FwRule {
		out := slices.Clone(rs)
		for i, r := range out {
			if r.Pos > 0 && firewall.Comment(r.Spec) != names.SharedComment {
				out[i].Pos = 0
			}
		}
		return out
	}),
}

// cniKernel is the real kernel, skipping t without Debian's plugins.
func cniKernel(t *testing.T) machine.Machine {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("the CNI plugins are not installed (Debian: apt-get install containernetworking-plugins; scripts/deps installs it)")
	}
	return realKernel(t)
}
