package kernel

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
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
	var steps []planner.Step
	for i := range 4 {
		ep := state.EndpointName(fmt.Sprintf("c%d", i), "front")
		alias := mark(state.KindEndpoint, ep)
		add(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("v%d", i)}, PeerName: fmt.Sprintf("p%d", i)}, alias, 0)
		steps = append(steps, planner.Step{Action: planner.Destroy, Op: planner.OpLinkDel, Resource: "endpoint " + ep, Link: fmt.Sprintf("v%d", i), Alias: alias})
	}
	steps = append(steps,
		planner.Step{Action: planner.Destroy, Op: planner.OpLinkDel, Resource: "endpoint x/front", Link: "foreign-v", Alias: mark(state.KindEndpoint, "x/front")},
		planner.Step{Action: planner.Destroy, Op: planner.OpLinkDel, Resource: "endpoint y/front", Link: "missing", Alias: mark(state.KindEndpoint, "y/front")},
	)
	k := mustNewT(t)
	if n := k.Batch(steps); n != len(steps) {
		t.Fatalf("Batch = %d, want %d", n, len(steps))
	}
	errs := k.ApplyBatch(context.Background(), steps)
	for i, err := range errs {
		wantErr := steps[i].Link == "foreign-v"
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
	if err := k.Apply(ctx, planner.Step{Op: planner.OpNetnsAdd, NS: "hc", Alias: mark(state.KindNamespace, "hc")}); err != nil {
		t.Fatal(err)
	}
	defer run(t, "ip", "netns", "del", "hc")
	for round, addr := range []string{"10.9.9.1/32", "10.9.9.2/32"} {
		// Observe caches a handle for hc; the address goes through it.
		if _, err := k.Observe(ctx, project); err != nil {
			t.Fatal(err)
		}
		if err := k.Apply(ctx, planner.Step{Op: planner.OpAddrAdd, NS: "hc", Link: "lo", Addr: addr}); err != nil {
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

func mustNewT(t *testing.T) *Netlink {
	t.Helper()
	k, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return k.(*Netlink)
}
