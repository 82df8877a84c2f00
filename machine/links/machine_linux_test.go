package links

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/files"
	"github.com/topolab/topo/machine/iptables"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/machine/process"
	"github.com/topolab/topo/machine/sysctl"
	"github.com/topolab/topo/machine/uts"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

const project = "shop"

func mark(kind names.Kind, name string) string {
	return names.NewMark(project, kind, name).String()
}

func mustMark(s string) names.Mark {
	m, _ := names.ParseMark(s)
	return m
}

func ref(s string) op.Ref {
	r, err := op.ParseRef(s)
	if err != nil {
		panic(err)
	}
	return r
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func ip(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func dst(s string) netip.Prefix {
	d, err := op.ParseDst(s)
	if err != nil {
		panic(err)
	}
	return d
}

// withUndo returns s carrying its inverse, as the planner builds steps.
func withUndo(s op.Step) op.Step {
	u := op.Step{Action: op.Destroy, Ref: s.Ref}
	switch o := s.Op.(type) {
	case op.NetnsAdd:
		u.Op = op.NetnsDel{NS: o.NS, Mark: o.Mark}
	case op.BridgeAdd:
		u.Op = op.LinkDel{NS: o.NS, Link: o.Link, Mark: o.Mark}
	case op.VethAdd:
		u.Op = op.LinkDel{NS: o.NS, Link: o.Link, Mark: o.Mark}
	case op.AddrAdd:
		u.Op = op.AddrDel{NS: o.NS, Link: o.Link, Addr: o.Addr}
	case op.RouteAdd:
		u.Op = op.RouteDel{NS: o.NS, Link: o.Link, Dst: o.Dst, Gateway: o.Gateway}
	}
	s.Action, s.Undo = op.Create, &u
	return s
}

// twoContainers builds containers a and b on network front, as topo up
// would: namespaces, bridge with gateway, veths, addresses, default routes.
func twoContainers() []op.Step {
	steps := []op.Step{
		{Ref: ref("container a"), Op: op.NetnsAdd{NS: "a", Mark: mustMark(mark(names.KindNamespace, "a"))}},
		{Ref: ref("container b"), Op: op.NetnsAdd{NS: "b", Mark: mustMark(mark(names.KindNamespace, "b"))}},
		{Ref: ref("network front"), Op: op.BridgeAdd{Link: "br-front", MAC: mac("02:42:0a:2a:01:01"), Mark: mustMark(mark(names.KindNetwork, "front"))}},
		{Ref: ref("network front"), Op: op.AddrAdd{Link: "br-front", Addr: pfx("10.42.1.1/24")}},
	}
	macs := []string{"02:42:0a:2a:01:02", "02:42:0a:2a:01:03"}
	for i, c := range []string{"a", "b"} {
		ep := "endpoint " + c + "/front"
		steps = append(steps,
			op.Step{Ref: ref(ep), Op: op.VethAdd{Link: "veth-" + c, Master: "br-front", Peer: "eth0", PeerNS: c, MAC: mac(macs[i]), Mark: mustMark(mark(names.KindEndpoint, names.Endpoint(c, "front")))}},
			op.Step{Ref: ref(ep), Op: op.AddrAdd{NS: c, Link: "eth0", Addr: pfx([]string{"10.42.1.2/24", "10.42.1.3/24"}[i])}},
			op.Step{Ref: ref(ep), Op: op.RouteAdd{NS: c, Dst: dst("default"), Gateway: ip("10.42.1.1")}},
		)
	}
	for i := range steps {
		steps[i] = withUndo(steps[i])
	}
	return steps
}

// testKernel is the netlink mechanism and the machine made with it.
type testKernel struct {
	*Kernel
	m machine.Machine
}

// Apply, Batch, ApplyBatch and Observe are the machine's, for steps.
func (k *testKernel) Apply(ctx context.Context, s op.Step) error { return k.m.Apply(ctx, s.Op) }
func (k *testKernel) Batch(steps []op.Step) int                  { return k.m.Batch(opsOf(steps)) }
func (k *testKernel) ApplyBatch(ctx context.Context, steps []op.Step) []error {
	return k.m.ApplyBatch(ctx, opsOf(steps))
}
func (k *testKernel) Observe(ctx context.Context, project string) (*state.Snapshot, error) {
	return k.m.Observe(ctx, project)
}

func opsOf(steps []op.Step) []op.Operation {
	out := make([]op.Operation, len(steps))
	for i := range steps {
		out[i] = steps[i].Op
	}
	return out
}

func newKernel(t testing.TB) *testKernel {
	t.Helper()
	sandbox.Require(t)
	k, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reset(t) })
	return &testKernel{k, &machine.Mechanisms{Links: k, Firewall: iptables.New(context.Background(), goipt.ProtocolIPv4, false),
		Firewall6: iptables.New(context.Background(), goipt.ProtocolIPv6, false),
		Sysctls:   sysctl.Kernel{}, Files: files.Kernel{Runtime: names.DefaultRuntime}, Processes: process.Kernel{Runtime: names.DefaultRuntime},
		UTS: uts.Kernel{Runtime: names.DefaultRuntime}}}
}

// reset empties the sandbox after a test, whatever the test left, so that
// one failure does not cascade: every named namespace, every link but lo,
// /etc/netns. Tests that check teardown do so before this runs.
func reset(t testing.TB) {
	nss, err := topons.List()
	if err != nil {
		t.Error(err)
	}
	for _, name := range nss {
		if err := removeNetns(name, filepath.Join(names.NetnsDir, name)); err != nil {
			t.Error(err)
		}
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Error(err)
	}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			_ = h.LinkDel(l) // a veth may have gone with its peer
		}
	}
	entries, _ := os.ReadDir(names.NetnsEtcDir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(names.NetnsEtcDir, e.Name()))
	}
}

func apply(t testing.TB, k *testKernel, steps ...op.Step) {
	t.Helper()
	for _, s := range steps {
		if err := k.m.Apply(context.Background(), s.Op); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// undo applies the inverses of steps in reverse order.
func undo(t *testing.T, k *testKernel, steps []op.Step) {
	t.Helper()
	for _, s := range slices.Backward(steps) {
		apply(t, k, *s.Undo)
	}
}

// observe observes project, without the kernel's link-local addresses
// and routes, which come when the kernel gets to them (see
// testkit.WithoutLinkLocal).
func observe(t *testing.T, k *testKernel, project string) *state.Snapshot {
	t.Helper()
	snap, err := k.m.Observe(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.WithoutLinkLocal(snap)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var lo = state.Link{Name: "lo", Kind: "device", Up: true, MTU: 65536, Addrs: []string{"127.0.0.1/8", "::1/128"}}

func TestTwoContainersOnABridge(t *testing.T) {
	k := newKernel(t)
	steps := twoContainers()
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })

	got := observe(t, k, project)
	// The firewall part of a snapshot is checked in firewall_linux_test.go,
	// the host's ports and nameservers in host_linux_test.go.
	got.Firewall, got.Firewall6, got.Ports, got.Nameservers, got.Netem, got.MachineID = nil, nil, nil, nil, nil, ""
	delete(got.Sysctls, names.RouteLocalnet("br-front"))
	delete(got.Sysctls, names.IPv6Off("br-front"))
	delete(got.Sysctls, names.IPv6Forward)
	container := func(name, addr string) state.Namespace {
		nsLo := lo
		nsLo.Alias = mark(names.KindNamespace, name)
		return state.Namespace{
			Name: name,
			Mark: mark(names.KindNamespace, name),
			Links: []state.Link{
				{Name: "eth0", Kind: "veth", Alias: mark(names.KindEndpoint, name+"/front"), Up: true, MAC: names.MAC(netip.MustParsePrefix(addr).Addr()).String(), MTU: 1500, Addrs: []string{addr}},
				nsLo,
			},
			Routes: []state.Route{
				{Dst: "10.42.1.0/24", Dev: "eth0"},
				{Dst: "default", Gateway: "10.42.1.1", Dev: "eth0"},
			},
		}
	}
	want := &state.Snapshot{
		Host: state.Namespace{
			Links: []state.Link{
				{Name: "br-front", Kind: "bridge", Alias: mark(names.KindNetwork, "front"), Up: true, MAC: "02:42:0a:2a:01:01", MTU: 1500, Addrs: []string{"10.42.1.1/24"}},
				lo,
				{Name: "veth-a", Kind: "veth", Alias: mark(names.KindEndpoint, "a/front"), Master: "br-front", Up: true, MTU: 1500, Hairpin: true},
				{Name: "veth-b", Kind: "veth", Alias: mark(names.KindEndpoint, "b/front"), Master: "br-front", Up: true, MTU: 1500, Hairpin: true},
			},
			Routes: []state.Route{{Dst: "10.42.1.0/24", Dev: "br-front"}},
		},
		Namespaces: []state.Namespace{container("a", "10.42.1.2/24"), container("b", "10.42.1.3/24")},
		Sysctls:    map[string]string{"net.ipv4.ip_forward": "0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Observe (-want +got):\n%s", diff)
	}

	// The namespaces are iproute2's: ip sees them and runs commands in them.
	if out := run(t, "ip", "netns", "list"); !strings.Contains(out, "a") || !strings.Contains(out, "b") {
		t.Errorf("ip netns list: %q", out)
	}
	// -w10: one reply, waited for up to 10 s (a loaded machine can take
	// longer than one second to resolve the first ARP).
	run(t, "ip", "netns", "exec", "a", "ping", "-c1", "-w10", "10.42.1.3")
	run(t, "ip", "netns", "exec", "b", "ping", "-c1", "-w10", "10.42.1.2")
	run(t, "ip", "netns", "exec", "a", "ping", "-c1", "-w10", "10.42.1.1")

	// IPv4 only: no IPv6 address on either end of a veth, ever (the host
	// end has IPv6 off, the container's no address generation), and lo
	// keeps ::1.
	for _, c := range []string{"a", "b"} {
		if out := run(t, "ip", "-n", c, "-d", "link", "show", "eth0"); !strings.Contains(out, "addrgenmode none") {
			t.Errorf("%s's eth0 generates IPv6 addresses:\n%s", c, out)
		}
		if out := run(t, "ip", "-n", c, "-6", "addr", "show", "dev", "eth0"); out != "" {
			t.Errorf("%s's eth0 has IPv6 addresses:\n%s", c, out)
		}
		if out := run(t, "ip", "-n", c, "-6", "addr", "show", "dev", "lo"); !strings.Contains(out, "::1/128") {
			t.Errorf("%s's lo has no ::1:\n%s", c, out)
		}
		if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/veth-" + c + "/disable_ipv6"); err != nil || strings.TrimSpace(string(b)) != "1" {
			t.Errorf("veth-%s: disable_ipv6 is %q (%v), want 1", c, b, err)
		}
		// A bridge port in hairpin mode, so that a container reaches its
		// own publishes through the host's address.
		if out := run(t, "ip", "-d", "link", "show", "veth-"+c); !strings.Contains(out, "hairpin on") {
			t.Errorf("veth-%s is not in hairpin mode:\n%s", c, out)
		}
	}
	// The bridge has the address of its step, set (assign type 3), which
	// its ports do not change.
	for file, want := range map[string]string{"address": "02:42:0a:2a:01:01", "addr_assign_type": "3"} {
		if b, err := os.ReadFile("/sys/class/net/br-front/" + file); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("br-front %s: %q (%v), want %s", file, b, err, want)
		}
	}
}

func TestTeardownLeavesNothing(t *testing.T) {
	k := newKernel(t)
	empty := observe(t, k, project)
	steps := twoContainers()
	apply(t, k, steps...)
	// A namespace's /etc/netns folder goes with it when empty; a file in
	// it stays (topo's DNS files go by steps of their own).
	for _, dir := range []string{"/etc/netns/a", "/etc/netns/b"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile("/etc/netns/a/resolv.conf", []byte("nameserver 127.0.0.11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	undo(t, k, steps)
	if diff := cmp.Diff(empty, observe(t, k, project)); diff != "" {
		t.Errorf("after teardown (-before +after):\n%s", diff)
	}
	if _, err := os.Stat("/etc/netns/b"); !os.IsNotExist(err) {
		t.Errorf("/etc/netns/b: %v, want it gone", err)
	}
	if _, err := os.Stat("/etc/netns/a/resolv.conf"); err != nil {
		t.Errorf("/etc/netns/a/resolv.conf: %v, want it kept", err)
	}
	// Deleting what is gone succeeds, step by step.
	for _, s := range slices.Backward(steps) {
		if err := k.Apply(context.Background(), *s.Undo); err != nil {
			t.Errorf("%s again: %v", s.Undo, err)
		}
	}
}

func TestCreateExisting(t *testing.T) {
	k := newKernel(t)
	steps := twoContainers()
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })
	before := observe(t, k, project)
	for _, s := range steps {
		err := k.Apply(context.Background(), s)
		if !machine.IsExist(err) {
			t.Errorf("%s again: %v, want IsExist", s, err)
		}
		if machine.IsNotFound(err) {
			t.Errorf("%s again: %v is also IsNotFound", s, err)
		}
	}
	// A failed create leaves what was there alone.
	if diff := cmp.Diff(before, observe(t, k, project)); diff != "" {
		t.Errorf("after failed creates (-before +after):\n%s", diff)
	}
	// The error is the kernel's: the step that failed names the command.
	if err := k.Apply(context.Background(), steps[2]); err == nil || err.Error() != "file exists" {
		t.Errorf("error %q, want the kernel's \"file exists\"", err)
	}
}

func TestVethFailureLeavesNothing(t *testing.T) {
	k := newKernel(t)
	steps := twoContainers()[:3] // namespaces a, b and the bridge
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })
	before := observe(t, k, project)
	for _, tc := range []struct {
		name    string
		step    op.Step
		is      func(error) bool
		wantErr string
	}{
		{"missing master", op.Step{Ref: ref("endpoint a/x"), Op: op.VethAdd{Link: "veth-x", Master: "br-none", Peer: "eth0", PeerNS: "a"}}, machine.IsNotFound, "link br-none: does not exist"},
		{"missing peer namespace", op.Step{Ref: ref("endpoint z/front"), Op: op.VethAdd{Link: "veth-x", Master: "br-front", Peer: "eth0", PeerNS: "z"}}, machine.IsNotFound, "namespace z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := k.Apply(context.Background(), tc.step)
			if !tc.is(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(before, observe(t, k, project)); diff != "" {
				t.Errorf("after failed veth-add (-before +after):\n%s", diff)
			}
		})
	}
	// A peer name taken in its namespace: the kernel makes neither end.
	apply(t, k, op.Step{Ref: ref("endpoint a/front"), Op: op.VethAdd{Link: "veth-a", Master: "br-front", Peer: "eth0", PeerNS: "a"}})
	before = observe(t, k, project)
	err := k.Apply(context.Background(), op.Step{Ref: ref("endpoint a/back"), Op: op.VethAdd{Link: "veth-a2", Master: "br-front", Peer: "eth0", PeerNS: "a"}})
	if !machine.IsExist(err) {
		t.Errorf("peer name taken: %v, want IsExist", err)
	}
	if diff := cmp.Diff(before, observe(t, k, project)); diff != "" {
		t.Errorf("after failed veth-add (-before +after):\n%s", diff)
	}
}

func TestObserveOtherNamespaces(t *testing.T) {
	k := newKernel(t)
	run(t, "ip", "netns", "add", "foreign")
	t.Cleanup(func() { run(t, "ip", "netns", "del", "foreign") })
	other := names.NewMark("other", names.KindNamespace, "x").String()
	steps := []op.Step{
		withUndo(op.Step{Ref: ref("container x"), Op: op.NetnsAdd{NS: "other-x", Mark: mustMark(other)}}),
		withUndo(op.Step{Ref: ref("container a"), Op: op.NetnsAdd{NS: "a", Mark: mustMark(mark(names.KindNamespace, "a"))}}),
	}
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })
	// An empty file, as a failed `ip netns add` leaves, is foreign too.
	if err := os.WriteFile(filepath.Join(names.NetnsDir, "stale"), nil, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(names.NetnsDir, "stale")) })

	aLo := lo
	aLo.Alias = mark(names.KindNamespace, "a")
	want := []state.Namespace{
		{Name: "a", Mark: mark(names.KindNamespace, "a"), Links: []state.Link{aLo}},
		{Name: "foreign"},
		{Name: "other-x", Mark: other},
		{Name: "stale"},
	}
	if diff := cmp.Diff(want, observe(t, k, project).Namespaces); diff != "" {
		t.Errorf("Namespaces (-want +got):\n%s", diff)
	}
}

func TestDeletesCheckOwnership(t *testing.T) {
	k := newKernel(t)
	steps := twoContainers()[:3]
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })
	before := observe(t, k, project)
	for _, s := range []op.Step{
		{Ref: ref("network back"), Op: op.LinkDel{Link: "br-front", Mark: mustMark(mark(names.KindNetwork, "back"))}},
		{Ref: ref("container b"), Op: op.NetnsDel{NS: "a", Mark: mustMark(mark(names.KindNamespace, "b"))}},
	} {
		if err := k.Apply(context.Background(), s); err == nil || !strings.Contains(err.Error(), "not topo's to delete") {
			t.Errorf("%s: %v, want a refusal", s, err)
		}
	}
	if diff := cmp.Diff(before, observe(t, k, project)); diff != "" {
		t.Errorf("after refused deletes (-before +after):\n%s", diff)
	}
}

func TestSysctl(t *testing.T) {
	k := newKernel(t)
	ns := withUndo(op.Step{Ref: ref("container a"), Op: op.NetnsAdd{NS: "a", Mark: mustMark(mark(names.KindNamespace, "a"))}})
	apply(t, k, ns)
	t.Cleanup(func() { apply(t, k, *ns.Undo) })

	apply(t, k, op.Step{Ref: ref("container a"), Op: op.Sysctl{NS: "a", Key: "net.ipv4.ip_forward", Value: "1"}})
	if got := strings.TrimSpace(run(t, "ip", "netns", "exec", "a", "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward in a = %q, want 1", got)
	}
	if got := observe(t, k, project).Sysctls["net.ipv4.ip_forward"]; got != "0" {
		t.Errorf("host ip_forward = %q after setting a's, want 0", got)
	}
	// The "host" here is the sandbox's own namespace.
	apply(t, k, op.Step{Ref: ref("host"), Op: op.Sysctl{Key: "net.ipv4.ip_forward", Value: "1"}})
	if got := observe(t, k, project).Sysctls["net.ipv4.ip_forward"]; got != "1" {
		t.Errorf("host ip_forward = %q, want 1", got)
	}
	apply(t, k, op.Step{Ref: ref("host"), Op: op.Sysctl{Key: "net.ipv4.ip_forward", Value: "0"}})
	if err := k.Apply(context.Background(), op.Step{Op: op.Sysctl{Key: "net..ipv4", Value: "1"}}); err == nil {
		t.Errorf("bad key: no error")
	}
}

func TestNetnsDirIsShared(t *testing.T) {
	k := newKernel(t)
	ns := withUndo(op.Step{Ref: ref("container a"), Op: op.NetnsAdd{NS: "a", Mark: mustMark(mark(names.KindNamespace, "a"))}})
	apply(t, k, ns)
	t.Cleanup(func() { apply(t, k, *ns.Undo) })
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 6 && f[4] == names.NetnsDir {
			if !strings.Contains(line, " shared:") {
				t.Errorf("%s is not shared: %s", names.NetnsDir, line)
			}
			return
		}
	}
	t.Errorf("%s is not a mount point", names.NetnsDir)
}

func TestBadNames(t *testing.T) {
	k := newKernel(t)
	for _, name := range []string{"..", ".", "a/b", ""} {
		for _, o := range []op.Operation{op.NetnsAdd{NS: name}, op.NetnsDel{NS: name}} {
			if err := k.m.Apply(context.Background(), o); err == nil {
				t.Errorf("%s %q: no error", o.Name(), name)
			}
		}
	}
}

// BenchmarkObserve observes a project of 1000 containers, each a namespace
// with a veth on one bridge, an address and a default route.
func BenchmarkObserve(b *testing.B) {
	k := newKernel(b)
	const n = 1000
	apply(b, k,
		op.Step{Op: op.BridgeAdd{Link: "br0", Mark: mustMark(mark(names.KindNetwork, "n"))}},
		op.Step{Op: op.AddrAdd{Link: "br0", Addr: pfx("10.1.0.1/16")}})
	for i := range n {
		c := fmt.Sprintf("c%d", i)
		apply(b, k,
			op.Step{Op: op.NetnsAdd{NS: c, Mark: mustMark(mark(names.KindNamespace, c))}},
			op.Step{Op: op.VethAdd{Link: "v" + c, Master: "br0", Peer: "eth0", PeerNS: c, Mark: mustMark(mark(names.KindEndpoint, c+"/n"))}},
			op.Step{Op: op.AddrAdd{NS: c, Link: "eth0", Addr: pfx(fmt.Sprintf("10.1.%d.%d/16", (i+2)/256, (i+2)%256))}},
			op.Step{Op: op.RouteAdd{NS: c, Dst: dst("default"), Gateway: ip("10.1.0.1")}},
		)
	}
	for b.Loop() {
		snap, err := k.Observe(context.Background(), project)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Namespaces) != n {
			b.Fatalf("Observe: %d namespaces, want %d", len(snap.Namespaces), n)
		}
	}
}

// hostLinksMarkedAs counts the host links whose alias is one of marks.
func hostLinksMarkedAs(t *testing.T, marks ...string) int {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range links {
		if slices.Contains(marks, l.Attrs().Alias) {
			n++
		}
	}
	return n
}

// TestNamespaceDeletesTakeTheirVeths: a batch of namespace deletions
// deletes the host ends of their veths before it returns (in one group
// delete), so that a rollback can rebuild a container under the same
// names at once.
func TestNamespaceDeletesTakeTheirVeths(t *testing.T) {
	k := newKernel(t)
	steps := twoContainers()
	apply(t, k, steps...)
	ends := []string{mark(names.KindEndpoint, names.Endpoint("a", "front")), mark(names.KindEndpoint, names.Endpoint("b", "front"))}
	if n := hostLinksMarkedAs(t, ends...); n != 2 {
		t.Fatalf("%d host ends before, want 2", n)
	}
	var dels []op.Step
	for _, s := range steps {
		if testkit.Is[op.NetnsAdd](s) {
			dels = append(dels, *s.Undo)
		}
	}
	for i, err := range k.ApplyBatch(context.Background(), dels) {
		if err != nil {
			t.Fatalf("%s: %v", dels[i], err)
		}
	}
	if names, _ := topons.List(); len(names) != 0 {
		t.Errorf("namespaces left after the batch: %q", names)
	}
	if n := hostLinksMarkedAs(t, ends...); n != 0 {
		t.Errorf("%d host ends left right after the batch", n)
	}

	// Delete a container and build it again at once, as a rollback of a
	// down does: the veth's host name must be free by then.
	apply(t, k, steps[0], steps[4], steps[5], steps[6])
	apply(t, k, *steps[0].Undo)
	apply(t, k, steps[0], steps[4], steps[5], steps[6])
	if n := hostLinksMarkedAs(t, ends[0]); n != 1 {
		t.Errorf("%d host ends of a after the rebuild, want 1", n)
	}
}

// TestObservedLinksLastUntilAChange checks that a namespace's deletion may
// check against what the observation read only while nothing changed
// through the handle since.
func TestObservedLinksLastUntilAChange(t *testing.T) {
	k := newKernel(t)
	apply(t, k, withUndo(op.Step{Ref: ref("container a"), Op: op.NetnsAdd{NS: "a", Mark: mustMark(mark(names.KindNamespace, "a"))}}))
	observe(t, k, project)
	seen := func() []linkInfo {
		t.Helper()
		h, err := k.socket("a")
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		return h.links
	}
	if l := seen(); len(l) != 1 || l[0].Name != "lo" {
		t.Fatalf("after observing: links %v, want lo", l)
	}
	if err := k.execute("a", markUpRequest("lo", mark(names.KindNamespace, "a"))); err != nil {
		t.Fatal(err)
	}
	if l := seen(); l != nil {
		t.Errorf("after a request through the handle: links %v, want none kept", l)
	}
	observe(t, k, project)
	h, err := k.handle("a")
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if l := seen(); l != nil {
		t.Errorf("after the library's handle was taken: links %v, want none kept", l)
	}
}
