package txn_test

import (
	"os"
	"testing"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
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

// TestCNIInPlace: connecting a running container to a CNI network, or
// disconnecting it, that fails at any step rolls back as it was; one
// that crashes converges with the next up (see inPlaceProofs).
func TestCNIInPlaceRollbackAtEveryStepFake(t *testing.T) {
	inPlaceProofs(t, fake.New(nil), cniFile, cniInPlace, false)
}

// On the kernel, the rollback proof takes the connect only: a failed
// disconnect's rollback puts the attachment back with its addresses and
// hardware address, but Debian's bridge plugin names its host end of the
// veth anew and appends its NAT rule after topo's jump, which the
// snapshot comparison counts as a difference (the fake proof, and the
// kernel's crash proof, take the disconnect).
func TestCNIInPlaceRollbackAtEveryStepKernel(t *testing.T) {
	inPlaceProofs(t, cniKernel(t), cniFile, cniInPlace[:1], false)
}

func TestCNIInPlaceCrashAtEveryStepFake(t *testing.T) {
	inPlaceProofs(t, fake.New(nil), cniFile, cniInPlace, true)
}

func TestCNIInPlaceCrashKernel(t *testing.T) {
	inPlaceProofs(t, cniKernel(t), cniFile, cniInPlace, true)
}

// cniKernel is the real kernel, skipping t without Debian's plugins.
func cniKernel(t *testing.T) machine.Machine {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("the CNI plugins are not installed (Debian: apt-get install containernetworking-plugins; scripts/deps installs it)")
	}
	return realKernel(t)
}
