//go:build porting

package kernel

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

const project = "shop"

func mark(kind, name string) string {
	return state.Mark{Project: project, Kind: kind, Name: name}.String()
}

// withUndo returns s carrying its inverse, as the planner builds steps.
func withUndo(s planner.Step) planner.Step {
	u := planner.Step{Action: planner.Destroy, Resource: s.Resource, NS: s.NS, Link: s.Link, Alias: s.Alias}
	switch s.Op {
	case planner.OpNetnsAdd:
		u.Op = planner.OpNetnsDel
	case planner.OpBridgeAdd, planner.OpVethAdd:
		u.Op = planner.OpLinkDel
	case planner.OpAddrAdd:
		u.Op, u.Addr = planner.OpAddrDel, s.Addr
	case planner.OpRouteAdd:
		u.Op, u.Dst, u.Gateway = planner.OpRouteDel, s.Dst, s.Gateway
	}
	s.Action, s.Undo = planner.Create, &u
	return s
}

// twoContainers builds containers a and b on network front, as topo up
// would: namespaces, bridge with gateway, veths, addresses, default routes.
func twoContainers() []planner.Step {
	steps := []planner.Step{
		{Op: planner.OpNetnsAdd, Resource: "container a", NS: "a", Alias: mark(state.KindNamespace, "a")},
		{Op: planner.OpNetnsAdd, Resource: "container b", NS: "b", Alias: mark(state.KindNamespace, "b")},
		{Op: planner.OpBridgeAdd, Resource: "network front", Link: "br-front", MAC: "02:42:0a:2a:01:01", Alias: mark(state.KindNetwork, "front")},
		{Op: planner.OpAddrAdd, Resource: "network front", Link: "br-front", Addr: "10.42.1.1/24"},
	}
	for i, c := range []string{"a", "b"} {
		ep := "endpoint " + c + "/front"
		steps = append(steps,
			planner.Step{Op: planner.OpVethAdd, Resource: ep, Link: "veth-" + c, Master: "br-front",
				Peer: "eth0", PeerNS: c, Alias: mark(state.KindEndpoint, state.EndpointName(c, "front"))},
			planner.Step{Op: planner.OpAddrAdd, Resource: ep, NS: c, Link: "eth0", Addr: []string{"10.42.1.2/24", "10.42.1.3/24"}[i]},
			planner.Step{Op: planner.OpRouteAdd, Resource: ep, NS: c, Dst: "default", Gateway: "10.42.1.1"},
		)
	}
	for i := range steps {
		steps[i] = withUndo(steps[i])
	}
	return steps
}

func newKernel(t testing.TB) *Netlink {
	t.Helper()
	sandbox.Require(t)
	k, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reset(t) })
	return k.(*Netlink)
}

// reset empties the sandbox after a test, whatever the test left, so that
// one failure does not cascade: every named namespace, every link but lo,
// /etc/netns. Tests that check teardown do so before this runs.
func reset(t testing.TB) {
	names, err := listNetns()
	if err != nil {
		t.Error(err)
	}
	for _, name := range names {
		if err := removeNetns(name, filepath.Join(netnsDir, name)); err != nil {
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
	entries, _ := os.ReadDir(netnsEtcDir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(netnsEtcDir, e.Name()))
	}
}

func apply(t testing.TB, k Kernel, steps ...planner.Step) {
	t.Helper()
	for _, s := range steps {
		if err := k.Apply(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// undo applies the inverses of steps in reverse order.
func undo(t *testing.T, k Kernel, steps []planner.Step) {
	t.Helper()
	for _, s := range slices.Backward(steps) {
		apply(t, k, *s.Undo)
	}
}

func observe(t *testing.T, k Kernel, project string) *state.Snapshot {
	t.Helper()
	snap, err := k.Observe(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var lo = state.Link{Name: "lo", Kind: "device", Up: true, Addrs: []string{"127.0.0.1/8"}}

func TestTwoContainersOnABridge(t *testing.T) {
	k := newKernel(t)
	steps := twoContainers()
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })

	got := observe(t, k, project)
	// The firewall part of a snapshot is checked in firewall_linux_test.go,
	// the host's ports and nameservers in host_linux_test.go.
	got.Firewall, got.Ports, got.Nameservers = nil, nil, nil
	delete(got.Sysctls, planner.RouteLocalnet("br-front"))
	delete(got.Sysctls, planner.BridgeIPv6Off("br-front"))
	container := func(name, addr string) state.Namespace {
		nsLo := lo
		nsLo.Alias = mark(state.KindNamespace, name)
		return state.Namespace{
			Name: name,
			Mark: mark(state.KindNamespace, name),
			Links: []state.Link{
				{Name: "eth0", Kind: "veth", Alias: mark(state.KindEndpoint, name+"/front"), Up: true, Addrs: []string{addr}},
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
				{Name: "br-front", Kind: "bridge", Alias: mark(state.KindNetwork, "front"), Up: true, MAC: "02:42:0a:2a:01:01", Addrs: []string{"10.42.1.1/24"}},
				lo,
				{Name: "veth-a", Kind: "veth", Alias: mark(state.KindEndpoint, "a/front"), Master: "br-front", Up: true, Hairpin: true},
				{Name: "veth-b", Kind: "veth", Alias: mark(state.KindEndpoint, "b/front"), Master: "br-front", Up: true, Hairpin: true},
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
		if !IsExist(err) {
			t.Errorf("%s again: %v, want IsExist", s, err)
		}
		if IsNotFound(err) {
			t.Errorf("%s again: %v is also IsNotFound", s, err)
		}
	}
	// A failed create leaves what was there alone.
	if diff := cmp.Diff(before, observe(t, k, project)); diff != "" {
		t.Errorf("after failed creates (-before +after):\n%s", diff)
	}
	err := k.Apply(context.Background(), steps[2])
	if want := "create bridge br-front (network front): "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
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
		step    planner.Step
		is      func(error) bool
		wantErr string
	}{
		{"missing master", planner.Step{Op: planner.OpVethAdd, Resource: "endpoint a/x", Link: "veth-x", Master: "br-none", Peer: "eth0", PeerNS: "a"}, IsNotFound, "link br-none: does not exist"},
		{"missing peer namespace", planner.Step{Op: planner.OpVethAdd, Resource: "endpoint z/front", Link: "veth-x", Master: "br-front", Peer: "eth0", PeerNS: "z"}, IsNotFound, "namespace z"},
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
	apply(t, k, planner.Step{Op: planner.OpVethAdd, Resource: "endpoint a/front", Link: "veth-a", Master: "br-front", Peer: "eth0", PeerNS: "a"})
	before = observe(t, k, project)
	err := k.Apply(context.Background(), planner.Step{Op: planner.OpVethAdd, Resource: "endpoint a/back", Link: "veth-a2", Master: "br-front", Peer: "eth0", PeerNS: "a"})
	if !IsExist(err) {
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
	other := state.Mark{Project: "other", Kind: state.KindNamespace, Name: "x"}.String()
	steps := []planner.Step{
		withUndo(planner.Step{Op: planner.OpNetnsAdd, Resource: "container x", NS: "other-x", Alias: other}),
		withUndo(planner.Step{Op: planner.OpNetnsAdd, Resource: "container a", NS: "a", Alias: mark(state.KindNamespace, "a")}),
	}
	apply(t, k, steps...)
	t.Cleanup(func() { undo(t, k, steps) })
	// An empty file, as a failed `ip netns add` leaves, is foreign too.
	if err := os.WriteFile(filepath.Join(netnsDir, "stale"), nil, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(netnsDir, "stale")) })

	aLo := lo
	aLo.Alias = mark(state.KindNamespace, "a")
	want := []state.Namespace{
		{Name: "a", Mark: mark(state.KindNamespace, "a"), Links: []state.Link{aLo}},
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
	for _, s := range []planner.Step{
		{Op: planner.OpLinkDel, Resource: "network back", Link: "br-front", Alias: mark(state.KindNetwork, "back")},
		{Op: planner.OpNetnsDel, Resource: "container b", NS: "a", Alias: mark(state.KindNamespace, "b")},
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
	ns := withUndo(planner.Step{Op: planner.OpNetnsAdd, Resource: "container a", NS: "a", Alias: mark(state.KindNamespace, "a")})
	apply(t, k, ns)
	t.Cleanup(func() { apply(t, k, *ns.Undo) })

	apply(t, k, planner.Step{Op: planner.OpSysctl, Resource: "container a", NS: "a", Key: "net.ipv4.ip_forward", Value: "1"})
	if got := strings.TrimSpace(run(t, "ip", "netns", "exec", "a", "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward in a = %q, want 1", got)
	}
	if got := observe(t, k, project).Sysctls["net.ipv4.ip_forward"]; got != "0" {
		t.Errorf("host ip_forward = %q after setting a's, want 0", got)
	}
	// The "host" here is the sandbox's own namespace.
	apply(t, k, planner.Step{Op: planner.OpSysctl, Resource: "host", Key: "net.ipv4.ip_forward", Value: "1"})
	if got := observe(t, k, project).Sysctls["net.ipv4.ip_forward"]; got != "1" {
		t.Errorf("host ip_forward = %q, want 1", got)
	}
	apply(t, k, planner.Step{Op: planner.OpSysctl, Resource: "host", Key: "net.ipv4.ip_forward", Value: "0"})
	if err := k.Apply(context.Background(), planner.Step{Op: planner.OpSysctl, Key: "net..ipv4", Value: "1"}); err == nil {
		t.Errorf("bad key: no error")
	}
}

func TestNetnsDirIsShared(t *testing.T) {
	k := newKernel(t)
	ns := withUndo(planner.Step{Op: planner.OpNetnsAdd, Resource: "container a", NS: "a", Alias: mark(state.KindNamespace, "a")})
	apply(t, k, ns)
	t.Cleanup(func() { apply(t, k, *ns.Undo) })
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 6 && f[4] == netnsDir {
			if !strings.Contains(line, " shared:") {
				t.Errorf("%s is not shared: %s", netnsDir, line)
			}
			return
		}
	}
	t.Errorf("%s is not a mount point", netnsDir)
}

func TestBadNames(t *testing.T) {
	k := newKernel(t)
	for _, name := range []string{"..", ".", "a/b", ""} {
		for _, op := range []planner.Op{planner.OpNetnsAdd, planner.OpNetnsDel} {
			if err := k.Apply(context.Background(), planner.Step{Op: op, NS: name}); err == nil {
				t.Errorf("%s %q: no error", op, name)
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
		planner.Step{Op: planner.OpBridgeAdd, Link: "br0", Alias: mark(state.KindNetwork, "n")},
		planner.Step{Op: planner.OpAddrAdd, Link: "br0", Addr: "10.1.0.1/16"})
	for i := range n {
		c := fmt.Sprintf("c%d", i)
		apply(b, k,
			planner.Step{Op: planner.OpNetnsAdd, NS: c, Alias: mark(state.KindNamespace, c)},
			planner.Step{Op: planner.OpVethAdd, Link: "v" + c, Master: "br0", Peer: "eth0", PeerNS: c, Alias: mark(state.KindEndpoint, c+"/n")},
			planner.Step{Op: planner.OpAddrAdd, NS: c, Link: "eth0", Addr: fmt.Sprintf("10.1.%d.%d/16", (i+2)/256, (i+2)%256)},
			planner.Step{Op: planner.OpRouteAdd, NS: c, Dst: "default", Gateway: "10.1.0.1"},
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
	ends := []string{mark(state.KindEndpoint, state.EndpointName("a", "front")), mark(state.KindEndpoint, state.EndpointName("b", "front"))}
	if n := hostLinksMarkedAs(t, ends...); n != 2 {
		t.Fatalf("%d host ends before, want 2", n)
	}
	var dels []planner.Step
	for _, s := range steps {
		if s.Op == planner.OpNetnsAdd {
			dels = append(dels, *s.Undo)
		}
	}
	for i, err := range k.ApplyBatch(context.Background(), dels) {
		if err != nil {
			t.Fatalf("%s: %v", dels[i], err)
		}
	}
	if names, _ := listNetns(); len(names) != 0 {
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
	apply(t, k, withUndo(planner.Step{Op: planner.OpNetnsAdd, Resource: "container a", NS: "a", Alias: mark(state.KindNamespace, "a")}))
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
	if err := k.execute("a", markUpRequest("lo", mark(state.KindNamespace, "a"))); err != nil {
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
