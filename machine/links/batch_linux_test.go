package links

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/internal/testkit"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// TestApplyBatchDeletesOnlyOwnedLinks deletes a run of links in one
// request and checks that each step gets its own answer: owned links go,
// a missing one is success, a foreign one is refused and stays, and a
// foreign link that already sits in the batch's device group survives.
func TestApplyBatchDeletesOnlyOwnedLinks(t *testing.T) {
	sandbox.Require(t)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	add := func(l netlink.Link, alias string, group uint32) {
		t.Helper()
		if err := h.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetAlias(l, alias); err != nil {
			t.Fatal(err)
		}
		if group != 0 {
			if err := h.LinkSetGroup(l, int(group)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A foreign link in the group a batch tries first: the batch must
	// pick another group, or this link would go with it.
	add(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "foreign-grp"}}, "", batchGroup)
	add(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "foreign-v"}, PeerName: "foreign-p"}, "someone else", 0)
	var steps []op.Step
	for i := range 4 {
		ep := names.Endpoint(fmt.Sprintf("c%d", i), "front")
		alias := mark(names.KindEndpoint, ep)
		add(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("v%d", i)}, PeerName: fmt.Sprintf("p%d", i)}, alias, 0)
		steps = append(steps, op.Step{Action: op.Destroy, Ref: ref("endpoint " + ep), Op: op.LinkDel{Link: fmt.Sprintf("v%d", i), Mark: mustMark(alias)}})
	}
	steps = append(steps,
		op.Step{Action: op.Destroy, Ref: ref("endpoint x/front"), Op: op.LinkDel{Link: "foreign-v", Mark: mustMark(mark(names.KindEndpoint, "x/front"))}},
		op.Step{Action: op.Destroy, Ref: ref("endpoint y/front"), Op: op.LinkDel{Link: "missing", Mark: mustMark(mark(names.KindEndpoint, "y/front"))}},
	)
	k := mustNewT(t)
	if n := k.Batch(steps); n != len(steps) {
		t.Fatalf("Batch = %d, want %d", n, len(steps))
	}
	errs := k.ApplyBatch(context.Background(), steps)
	for i, err := range errs {
		wantErr := steps[i].Op.(op.LinkDel).Link == "foreign-v"
		if (err != nil) != wantErr {
			t.Errorf("step %s: err = %v, want error: %v", steps[i].Command(), err, wantErr)
		}
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, l := range links {
		left[l.Attrs().Name] = true
	}
	for _, name := range []string{"v0", "p0", "v3", "p3"} {
		if left[name] {
			t.Errorf("%s is still there", name)
		}
	}
	for _, name := range []string{"foreign-grp", "foreign-v", "foreign-p"} {
		if !left[name] {
			t.Errorf("foreign link %s was deleted", name)
		}
	}
	for _, name := range []string{"foreign-grp", "foreign-v"} {
		_ = h.LinkDel(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
	}
}

// TestHandleCacheFollowsTheNamespace replaces a namespace behind topo's
// back, under the same name, and checks that the kernel then works in the
// new one, not through its cached handle to the old.
func TestHandleCacheFollowsTheNamespace(t *testing.T) {
	sandbox.Require(t)
	k := mustNewT(t)
	ctx := context.Background()
	if err := k.Apply(ctx, op.Step{Op: op.NetnsAdd{NS: "hc", Mark: mustMark(mark(names.KindNamespace, "hc"))}}); err != nil {
		t.Fatal(err)
	}
	defer run(t, "ip", "netns", "del", "hc")
	for round, addr := range []string{"10.9.9.1/32", "10.9.9.2/32"} {
		// Observe caches a handle for hc; the address goes through it.
		if _, err := k.Observe(ctx, project); err != nil {
			t.Fatal(err)
		}
		if err := k.Apply(ctx, op.Step{Op: op.AddrAdd{NS: "hc", Link: "lo", Addr: pfx(addr)}}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		out := run(t, "ip", "-n", "hc", "-4", "-o", "addr", "show", "dev", "lo")
		if !strings.Contains(out, addr) {
			t.Fatalf("round %d: %s is not in the namespace now called hc:\n%s", round, addr, out)
		}
		run(t, "ip", "netns", "del", "hc")
		run(t, "ip", "netns", "add", "hc")
	}
}

func mustNewT(t *testing.T) *testKernel {
	t.Helper()
	k := newKernel(t)
	return k
}

// downSteps are the steps of a down of twoContainers, as the planner
// orders them: the namespaces, the bridge, then a DNS file of a.
func downSteps(steps []op.Step) []op.Step {
	var dels []op.Step
	for _, s := range steps {
		if testkit.Is[op.NetnsAdd](s) {
			dels = append(dels, *s.Undo)
		}
	}
	for _, s := range steps {
		if testkit.Is[op.BridgeAdd](s) {
			dels = append(dels, *s.Undo)
		}
	}
	return append(dels, op.Step{Action: op.Destroy, Ref: ref("container a"), Op: op.FileDel{NS: "a", Path: "/etc/netns/a/hosts"}})
}

// linkByNameT returns the host link called name, nil if there is none.
func linkByNameT(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if _, ok := err.(netlink.LinkNotFoundError); ok {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDownBatchDeletesHostSideTogether runs a down's namespaces, bridge
// and file removal as one batch. When it returns, the veths and the
// bridge are gone without waiting for the kernel's teardown, the file is
// removed, and foreign links survive: one on the bridge (detached), and
// one in the device group a batch tries first.
func TestDownBatchDeletesHostSideTogether(t *testing.T) {
	k := newKernel(t)
	apply(t, k, twoContainers()...)
	if err := os.MkdirAll("/etc/netns/a", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/netns/a/hosts", []byte("10.42.1.2 a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "foreign-v", MasterIndex: linkByNameT(t, "br-front").Attrs().Index}, PeerName: "foreign-p"}
	grouped := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "foreign-grp"}}
	for _, l := range []netlink.Link{foreign, grouped} {
		if err := netlink.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlink.LinkSetGroup(grouped, batchGroup); err != nil {
		t.Fatal(err)
	}

	steps := downSteps(twoContainers())
	if n := k.Batch(steps); n != len(steps) {
		t.Fatalf("Batch = %d, want %d", n, len(steps))
	}
	for i, err := range k.ApplyBatch(context.Background(), steps) {
		if err != nil {
			t.Errorf("%s: %v", steps[i].Command(), err)
		}
	}
	if names, _ := topons.List(); len(names) != 0 {
		t.Errorf("namespaces left: %q", names)
	}
	ends := []string{mark(names.KindEndpoint, names.Endpoint("a", "front")), mark(names.KindEndpoint, names.Endpoint("b", "front"))}
	if n := hostLinksMarkedAs(t, ends...); n != 0 {
		t.Errorf("%d host ends left when the batch returned", n)
	}
	if linkByNameT(t, "br-front") != nil {
		t.Error("br-front left")
	}
	if l := linkByNameT(t, "foreign-v"); l == nil || l.Attrs().MasterIndex != 0 {
		t.Errorf("foreign veth on the bridge: %v, want it kept, without master", l)
	}
	if l := linkByNameT(t, "foreign-grp"); l == nil || l.Attrs().Group != batchGroup {
		t.Errorf("foreign link in group %#x: %v, want it kept there", uint32(batchGroup), l)
	}
	if _, err := os.Stat("/etc/netns/a"); !os.IsNotExist(err) {
		t.Errorf("/etc/netns/a: %v, want it gone", err)
	}
}

// TestDownBatchKeepsBridgeOfAKeptNamespace: a namespace that is not
// topo's to delete stays, and so does the bridge its veth is on, with the
// veth on it; the bridge's step says it did not run.
func TestDownBatchKeepsBridgeOfAKeptNamespace(t *testing.T) {
	k := newKernel(t)
	apply(t, k, twoContainers()...)
	steps := downSteps(twoContainers())[:3]
	d := steps[1].Op.(op.NetnsDel)
	d.Mark = names.NewMark(project, names.KindNamespace, "someone-else")
	steps[1].Op = d
	errs := k.ApplyBatch(context.Background(), steps)
	if errs[0] != nil || errs[1] == nil || errs[2] == nil || !strings.Contains(errs[2].Error(), "not run") {
		t.Fatalf("errs = %v, want a deleted, b refused, the bridge not run", errs)
	}
	k.Settle(context.Background())
	if names, _ := topons.List(); !slices.Equal(names, []string{"b"}) {
		t.Errorf("namespaces left: %q, want b", names)
	}
	br := linkByNameT(t, "br-front")
	if br == nil {
		t.Fatal("br-front deleted")
	}
	if v := linkByNameT(t, "veth-b"); v == nil || v.Attrs().MasterIndex != br.Attrs().Index || v.Attrs().Group != 0 {
		t.Errorf("veth-b: %v, want it on br-front, in group 0", v)
	}
	if linkByNameT(t, "veth-a") != nil {
		t.Error("veth-a left after Settle")
	}
}

// TestDownBatchFallsBackWhenTheGroupDeleteFails makes the group delete
// fail (lo, which the kernel cannot delete, carries a bridge step's name
// and mark): every link is put back in its group, the namespaces then go
// with their veths as they would alone, and each bridge step says what
// happened to it.
func TestDownBatchFallsBackWhenTheGroupDeleteFails(t *testing.T) {
	k := newKernel(t)
	apply(t, k, twoContainers()...)
	alias := mark(names.KindNetwork, "loop")
	lo := linkByNameT(t, "lo")
	if err := netlink.LinkSetAlias(lo, alias); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkSetAlias(lo, "") })
	steps := downSteps(twoContainers())[:3]
	steps = append(steps, op.Step{Action: op.Destroy, Ref: ref("network loop"), Op: op.LinkDel{Link: "lo", Mark: mustMark(alias)}})
	if n := k.Batch(steps); n != len(steps) {
		t.Fatalf("Batch = %d, want %d", n, len(steps))
	}
	errs := k.ApplyBatch(context.Background(), steps)
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] == nil {
		t.Fatalf("errs = %v, want only lo's deletion to fail", errs)
	}
	if l := linkByNameT(t, "lo"); l == nil || l.Attrs().Group != 0 {
		t.Errorf("lo: %v, want it in group 0", l)
	}
	if linkByNameT(t, "br-front") != nil {
		t.Error("br-front left")
	}
	k.Settle(context.Background())
	ends := []string{mark(names.KindEndpoint, names.Endpoint("a", "front")), mark(names.KindEndpoint, names.Endpoint("b", "front"))}
	if n := hostLinksMarkedAs(t, ends...); n != 0 {
		t.Errorf("%d host ends left after Settle", n)
	}
}

// TestExecuteAllAnswersEachRequest: requests sent in one write each get
// their own answer, a failure does not stop those after it, and the
// socket serves the next request.
func TestExecuteAllAnswersEachRequest(t *testing.T) {
	sandbox.Require(t)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "exec-all"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(br)
	k, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := k.socket("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	errs := executeAll(h.sock, markUpRequest("no-such-link", ""), markUpRequest("exec-all", "all-at-once"))
	if !errors.Is(errs[0], unix.ENODEV) || errs[1] != nil {
		t.Fatalf("errs = %v, want [ENODEV nil]", errs)
	}
	if err := executeOn(h.sock, markUpRequest("exec-all", "")); err != nil {
		t.Fatalf("the socket after the write: %v", err)
	}
	l, err := netlink.LinkByName("exec-all")
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().Alias != "all-at-once" || l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge: alias %q, flags %v: the request after the failed one did not run", l.Attrs().Alias, l.Attrs().Flags)
	}
}
