package txn_test

import (
	"os"
	"testing"

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
`

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
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("the CNI plugins are not installed (Debian: apt-get install containernetworking-plugins; scripts/deps installs it)")
	}
	k := realKernel(t)
	rollbackEveryStep(t, k, toEmpty(t, k), cniFile, 10)
}
