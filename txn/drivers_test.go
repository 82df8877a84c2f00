package txn_test

import (
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// driversFile puts containers on a macvlan network of the host's link
// rblan0, with the host's own macvlan (host_link), and on the host's
// bridge rb-lab (external), beside a bridge of topo's.
const driversFile = `
name: rb
networks:
  lan:
    driver: macvlan
    driver_opts: {parent: rblan0, host_link: true}
    subnet: 192.168.77.0/24
    gateway: 192.168.77.254
    ip_range: 192.168.77.128/25
  lab: {external: true, name: rb-lab}
  front: {subnet: 10.99.1.0/24}
containers:
  a:
    networks: [lan, lab, front]
    command: ["sleep", "3600"]
  b: {networks: [lab, lan]}
  c: {networks: [front], command: ["sleep", "3600"]}
`

// driversInPlace connect running containers to, and disconnect them
// from, driversFile's macvlan and external networks.
var driversInPlace = []change{
	{"macvlan-connect", "c: {networks: [front]", "c: {networks: [front, lan]"},
	{"macvlan-disconnect", "networks: [lan, lab, front]", "networks: [lab, front]"},
	{"external-connect", "c: {networks: [front]", "c: {networks: [front, lab]"},
	{"external-disconnect", "networks: [lan, lab, front]", "networks: [lan, front]"},
}

// driversHost is the host's links driversFile names, for the fake.
var driversHost = &state.Snapshot{Host: state.Namespace{Links: []state.Link{
	{Name: "rb-lab", Kind: "bridge", Up: true, MAC: "02:00:0a:62:00:01", MTU: 1500, Addrs: []string{"10.98.0.1/24"}},
	{Name: "rblan0", Kind: "veth", Up: true, MTU: 1500, Addrs: []string{"192.168.77.10/24"}},
}}}

// driversSetup makes them in the sandbox: rblan0 a veth whose peer has
// no namespace of its own (nothing needs to answer on it), and rb-lab
// with its hardware address set (else the kernel gives it its ports').
const driversSetup = `set -e
ip link add rb-lab address 02:00:0a:62:00:01 type bridge
ip addr add 10.98.0.1/24 dev rb-lab
ip link set rb-lab up
ip link add rblan0 type veth peer name rblan1
ip addr add 192.168.77.10/24 dev rblan0
ip link set rblan0 up
ip link set rblan1 up
`

// toEmpty returns a reset that leaves nothing of the project.
func toEmpty(t testing.TB, k machine.Machine) func() {
	return func() { mustDown(t, project(t, k)) }
}

// TestDriversRollbackAtEveryStep: an up of macvlan and external networks
// that fails at any step rolls back to the kernel as it was, on the fake
// and on the real kernel; and, on the fake, one that crashes at any call
// converges with the next up and leaves nothing after a down.
func TestDriversRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(driversHost)
	rollbackEveryStep(t, k, toEmpty(t, k), driversFile, 10)
}

func TestDriversCrashAtEveryStepFake(t *testing.T) {
	k := fake.New(driversHost)
	crashAtEveryStep(t, k, toEmpty(t, k), driversFile, nil, nil)
}

// TestDriversDownRollbackAtEveryStepFake: a down of them that fails at any
// step rolls back to the project as it was.
func TestDriversDownRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(driversHost)
	downRollbackEveryStep(t, k, func() { toEmpty(t, k)(); mustUp(t, project(t, k), driversFile) }, 10)
}

func TestDriversRollbackAtEveryStepKernel(t *testing.T) {
	k := driversKernel(t)
	rollbackEveryStep(t, k, toEmpty(t, k), driversFile, 10)
}

// driversKernel is the real kernel with driversSetup's links.
func driversKernel(t *testing.T) machine.Machine {
	k := realKernel(t)
	if out, err := exec.Command("sh", "-c", driversSetup).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("sh", "-c", "ip link del rb-lab; ip link del rblan0").Run() })
	return k
}

// TestDriversInPlaceRollbackAtEveryStep: connecting a running container
// to a macvlan or external network, or disconnecting it, that fails at
// any step rolls back to the project as it was, on the fake and the real
// kernel; one that crashes at any call (on the kernel, a sample of them,
// as TestInPlaceCrashKernel) converges with the next up.
func TestDriversInPlaceRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(driversHost)
	inPlaceProofs(t, k, driversFile, driversInPlace, false)
}

func TestDriversInPlaceRollbackAtEveryStepKernel(t *testing.T) {
	inPlaceProofs(t, driversKernel(t), driversFile, driversInPlace, false)
}

func TestDriversInPlaceCrashAtEveryStepFake(t *testing.T) {
	k := fake.New(driversHost)
	inPlaceProofs(t, k, driversFile, driversInPlace, true)
}

func TestDriversInPlaceCrashKernel(t *testing.T) {
	inPlaceProofs(t, driversKernel(t), driversFile, driversInPlace, true)
}

// inPlaceProofs runs, for each change of base, the every-step rollback
// proof or (crash) the crash proof; on the real kernel the crash proof
// takes the sample of TestInPlaceCrashKernel.
func inPlaceProofs(t *testing.T, k machine.Machine, base string, changes []change, crash bool, opts ...cmp.Option) {
	_, isFake := k.(*fake.Machine)
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			to := changed(t, base, c)
			if !crash {
				rollbackEveryStep(t, k, toFile(t, k, base), to, 1, opts...)
				return
			}
			var sample func(op.Step) bool
			if !isFake {
				n := 0
				sample = func(op.Step) bool { n++; return n <= 3 || n%3 != 0 }
			}
			crashAtEveryStep(t, k, toFile(t, k, base), to, sample, nil)
		})
	}
}
