package kernel

import (
	"fmt"
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

// deleteNetnsCollecting deletes a namespace, refusing one whose lo is not
// marked as the step says (through the cached handle), and adds to marks those of its veths (their host ends carry the same marks),
// reading both lo's mark and the veths' from one dump.
func (k *Netlink) deleteNetnsCollecting(s planner.Step, marks map[string]bool) error {
	h, err := k.handle(s.NS)
	switch {
	case IsNotFound(err):
		// Gone already; /etc/netns/NAME may still be there.
	case err != nil && s.Alias == "":
		// Not a namespace (an empty file left by a crash): nothing to
		// check, nothing inside; the file goes.
	case err != nil:
		return fmt.Errorf("check ownership: %w", err)
	default:
		links, err := retryDump(h.LinkList)
		h.Close()
		if err != nil {
			return fmt.Errorf("check ownership: %w", err)
		}
		for _, l := range links {
			alias := l.Attrs().Alias
			if l.Attrs().Name == "lo" && s.Alias != "" && alias != s.Alias {
				return fmt.Errorf("lo is marked %q, not %q: not topo's to delete", alias, s.Alias)
			}
			if mk, ok := state.ParseMark(alias); ok && mk.Kind == state.KindEndpoint && l.Type() == "veth" {
				marks[alias] = true
			}
		}
	}
	k.handles.forget(s.NS)
	return deleteNetns(s.NS, "")
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
		// Each look takes the rtnl lock the teardown needs: not too often.
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteNetnsSettled is netns-del: the namespace goes, then topo waits for
// the host ends of its veths to go too.
func (k *Netlink) deleteNetnsSettled(s planner.Step) error {
	marks := map[string]bool{}
	if err := k.deleteNetnsCollecting(s, marks); err != nil {
		return err
	}
	k.awaitHostEndsGone(marks)
	return nil
}

// deleteNetnsBatch deletes a run of namespaces and waits once for all
// their veths' host ends, so that the kernel tears them down together.
func (k *Netlink) deleteNetnsBatch(steps []planner.Step, errs []error) {
	marks := map[string]bool{}
	for i, s := range steps {
		errs[i] = k.deleteNetnsCollecting(s, marks)
	}
	k.awaitHostEndsGone(marks)
}
