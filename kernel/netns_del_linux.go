package kernel

import (
	"context"
	"time"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

// Deleting a container's namespace deletes its veths, and the kernel tears
// them down in the background (cleanup_net), many namespaces in one go:
// that is why `ip netns del` of hundreds of namespaces is fast, and why
// topo deletes a departing container's namespace instead of its veths one
// by one. The host ends of those veths vanish a little after the unmount;
// topo waits for them, so that the next observation, and the next up, do
// not find them half gone.

// settleTimeout bounds the wait for the kernel's background teardown.
const settleTimeout = 60 * time.Second

// endpointMarks lists the marks of the veths in namespace ns: their host
// ends carry the same marks. A namespace already gone has none.
func (k *Netlink) endpointMarks(ns string, into map[string]bool) {
	h, err := k.handle(ns)
	if err != nil {
		return
	}
	defer h.Close()
	links, err := retryDump(h.LinkList)
	if err != nil {
		return
	}
	for _, l := range links {
		if mk, ok := state.ParseMark(l.Attrs().Alias); ok && mk.Kind == state.KindEndpoint && l.Type() == "veth" {
			into[l.Attrs().Alias] = true
		}
	}
}

// awaitHostEndsGone waits until no host link carries one of marks. It
// gives up quietly after settleTimeout: what is left is then a lone veth
// end that the next plan removes.
func (k *Netlink) awaitHostEndsGone(marks map[string]bool) {
	if len(marks) == 0 {
		return
	}
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		h, err := k.handle("")
		if err != nil {
			return
		}
		links, err := retryDump(h.LinkList)
		h.Close()
		if err != nil {
			return
		}
		left := false
		for _, l := range links {
			if marks[l.Attrs().Alias] {
				left = true
				break
			}
		}
		if !left {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deleteNetnsSettled is netns-del: the namespace goes, then topo waits for
// the host ends of its veths to go too.
func (k *Netlink) deleteNetnsSettled(s planner.Step) error {
	marks := map[string]bool{}
	k.endpointMarks(s.NS, marks)
	if err := k.deleteOwnedNetns(s.NS, s.Alias); err != nil {
		return err
	}
	k.awaitHostEndsGone(marks)
	return nil
}

// deleteNetnsBatch deletes a run of namespaces and waits once for all
// their veths' host ends, so that the kernel tears them down together.
func (k *Netlink) deleteNetnsBatch(ctx context.Context, steps []planner.Step, errs []error) {
	marks := map[string]bool{}
	for _, s := range steps {
		k.endpointMarks(s.NS, marks)
	}
	for i, s := range steps {
		errs[i] = k.deleteOwnedNetns(s.NS, s.Alias)
	}
	k.awaitHostEndsGone(marks)
}
