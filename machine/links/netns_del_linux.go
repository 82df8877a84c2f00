package links

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// Deleting a container's namespace deletes its veths, and the kernel tears
// them down in the background (cleanup_net), many namespaces in one go:
// that is why `ip netns del` of hundreds of namespaces is fast, and why
// topo deletes a departing container's namespace instead of its veths one
// by one.
//
// But a down also deletes the bridges, and the bridges wait for the
// kernel's networking lock behind the namespaces' teardown: at N=500 the
// chain from the namespaces' release to the last bridge took 375-530 ms,
// the same chain the batched script waits for. Unregistering 1000 devices
// costs the same CPU wherever it is done; what the chain adds is RCU
// waits: the teardown's own, one rcu_barrier per bridge after it, and the
// 500 loopbacks. So when a run of namespace deletions is done, topo first
// unmounts the namespaces, keeping them alive through its own handles in
// them, then deletes the host ends of their veths (which takes the
// container ends with them) and the run's bridges in one group delete,
// and only then lets the namespaces go: what is left in them (lo) is torn
// down in the background, after the command. Kernel part alone (`ip`,
// sandbox, 3 runs each): 255-274 ms against 384-471 for the script's
// order (deleting the bridges in a second group delete: 312-396).
//
// If that group delete cannot be done, nothing of it is: the namespaces
// then take their veths with them, as before, and the bridges go after.
// The host ends of those veths vanish a little after the unmount. topo
// does not wait for them right away: the steps that follow run while the
// kernel tears down. Settle waits for the end of it, before any step
// that creates something (a rollback, or an up that rebuilds a
// container) and when a run ends, so that the next observation and the
// next up do not find links half gone.

// settleTimeout bounds the wait for the kernel's background teardown.
const settleTimeout = 60 * time.Second

// teardown holds the marks of the host veth ends that the kernel is
// removing in the background.
type teardown struct {
	mu    sync.Mutex
	marks map[string]bool
}

func (t *teardown) add(marks []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.marks == nil {
		t.marks = map[string]bool{}
	}
	for _, m := range marks {
		t.marks[m] = true
	}
}

func (t *teardown) take() map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.marks
	t.marks = nil
	return m
}

// checkNetns reads a namespace about to be deleted. It refuses one whose lo
// is not marked as the step says, and returns the marks of its veths (their
// host ends carry the same), reading both from one dump: the dump this
// command's observation made of the same namespace (the handle is bound
// to it, not to its name) if there is one. A down at N=500 spent 15-30
// ms dumping every namespace again, for what the observation had just
// read; topo's own steps before a namespace's deletion can only remove
// links from it, and a gone veth's mark is no harm to Settle.
//
// It also returns the indexes of the namespace's links that NetnsDel
// deletes itself, as the kernel's teardown would take them only later:
// point-to-point links, whose other ends in other namespaces an undo that
// makes the link again (a rollback) would find still there; and
// macvlans, whose hardware address a new macvlan on the same parent (a
// rollback, or the next up) could not take while the old one is there
// (EADDRINUSE when it is set up).
func (k *Kernel) checkNetns(s op.NetnsDel) (marks []string, first []int, err error) {
	h, err := k.socket(s.NS)
	switch {
	case machine.IsNotFound(err):
		return nil, nil, nil // gone already; /etc/netns/NAME may still be there
	case err != nil && s.Mark.IsZero():
		// Not a namespace (an empty file left by a crash): nothing to
		// check, nothing inside; the file goes.
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("check ownership: %w", err)
	}
	links := h.links
	if links == nil {
		links, err = retryDump(func() ([]linkInfo, error) { return dumpLinks(h.sock) })
	}
	h.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("check ownership: %w", err)
	}
	for _, l := range links {
		if want := s.Mark.String(); l.Name == "lo" && want != "" && l.Alias != want {
			return nil, nil, fmt.Errorf("lo is marked %q, not %q: not topo's to delete", l.Alias, want)
		}
		mk, ok := names.ParseMark(l.Alias)
		switch {
		case ok && l.Kind == "macvlan":
			first = append(first, l.Index)
		case !ok || l.Kind != "veth":
		case mk.Kind == names.KindEndpoint:
			marks = append(marks, l.Alias)
		case mk.Kind == names.KindLink:
			first = append(first, l.Index)
		}
	}
	return marks, first, nil
}

// NetnsDel deletes a run of namespaces, and the bridges of bridges
// after them, errs saying what happened to each, namespaces first. It checks the namespaces, in parallel, before it
// deletes any, so that no check waits on the teardown of namespaces
// deleted before it. Then it unmounts them, deletes their veths and the
// bridges (deleteHostSide), and only then closes its handles in them,
// which frees them: within a millisecond, so that the kernel tears them
// all down in one round rather than in several, each with its own RCU
// grace periods. The unmounted files and empty /etc/netns folders go
// last: 500 unlinks and rmdirs that no longer come before the deletions.
//
// Equivalent to: `ip netns del NAME; rmdir /etc/netns/NAME` (the folder
// only when empty), for each, and `ip link del BRIDGE`
func (k *Kernel) NetnsDel(steps []op.NetnsDel, bridges []op.LinkDel, errs []error) {
	n := len(steps)
	bridgeErrs := errs[n:]
	errs = errs[:n]

	marks := make([][]string, len(steps))
	first := make([][]int, len(steps))
	inParallel(len(steps), func(i int) {
		marks[i], first[i], errs[i] = k.checkNetns(steps[i])
	})
	paths := make([]string, len(steps))
	for i, s := range steps {
		if errs[i] != nil {
			continue
		}
		if errs[i] = k.deleteIndexes(s.NS, first[i]); errs[i] != nil {
			continue
		}
		if paths[i], errs[i] = names.NetnsPath(s.NS); errs[i] == nil {
			errs[i] = unmountNetns(paths[i])
		}
	}
	failed := errors.Join(errs...)
	// The bridges go only if every namespace did: a veth left behind
	// would lose its master, and its step no undo to give it back.
	together := failed == nil && k.deleteHostSide(slices.Concat(marks...), bridges, bridgeErrs)
	if !together {
		for i := range steps {
			if errs[i] == nil {
				k.dying.add(marks[i])
			}
		}
	}
	for _, s := range steps {
		k.handles.forget(s.NS)
	}
	switch {
	case failed != nil:
		for i := range bridges {
			bridgeErrs[i] = fmt.Errorf("%w: a namespace deletion of the same batch failed", op.ErrNotRun)
		}
	case !together && len(bridges) > 0:
		clear(bridgeErrs)
		k.deleteLinks(bridges, bridgeErrs)
	}
	for i, s := range steps {
		if errs[i] == nil {
			errs[i] = removeNetnsName(s.NS, paths[i])
		}
		errs[i] = classify(errs[i])
	}
	for i := range bridgeErrs {
		bridgeErrs[i] = classify(bridgeErrs[i])
	}
}

// deleteIndexes deletes the links of namespace ns with the given indexes;
// one gone already (a peer in a namespace deleted before) is success.
//
// Equivalent to: `ip -n NS link del LINK`, for each
func (k *Kernel) deleteIndexes(ns string, indexes []int) error {
	if len(indexes) == 0 {
		return nil
	}
	h, err := k.socket(ns)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	h.links = nil // links change below
	for _, i := range indexes {
		if err := executeOn(h.sock, linkIndexRequest(unix.RTM_DELLINK, i)); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete its point-to-point link %d: %w", i, err)
		}
	}
	return nil
}

// deleteHostSide deletes, in one group delete, the host ends of the veths
// marked marks (their container ends go with them) and the bridges of
// steps, recording in errs a bridge refused as not topo's. It returns
// false, having deleted nothing, if it could not; errs then says nothing.
func (k *Kernel) deleteHostSide(marks []string, steps []op.LinkDel, errs []error) bool {
	if len(marks) == 0 && len(steps) == 0 {
		return true
	}
	h, err := k.socket("")
	if err != nil {
		return false
	}
	defer h.Close()
	h.links = nil // links change below
	all, err := retryDump(func() ([]linkInfo, error) { return dumpLinks(h.sock) })
	if err != nil {
		return false
	}
	ends := make(map[string]bool, len(marks))
	for _, m := range marks {
		ends[m] = true
	}
	byName := make(map[string]linkInfo, len(all))
	var victims []linkInfo
	for _, l := range all {
		if l.Kind == "veth" && ends[l.Alias] {
			victims = append(victims, l)
		}
		byName[l.Name] = l
	}
	refused := make([]error, len(steps))
	bridges, _ := stepLinks(steps, byName, refused)
	victims = append(victims, bridges...)
	group := freeGroup(all)
	for j, l := range victims {
		if err := setGroup(h.sock, l, group); err != nil && !errors.Is(err, unix.ENODEV) {
			restoreGroups(h.sock, victims[:j])
			return false
		}
	}
	if err := deleteGroup(h.sock, group); err != nil {
		// Nothing of the group went: the kernel checks every link first.
		restoreGroups(h.sock, victims)
		return false
	}
	copy(errs, refused)
	return true
}

// restoreGroups puts links back in the device groups they were in. A link
// that cannot be put back keeps the batch's group, which names it to no
// one: the next batch takes another.
func restoreGroups(sh *nl.SocketHandle, links []linkInfo) {
	for _, l := range links {
		_ = setGroup(sh, l, l.Group)
	}
}

// Settle waits until the kernel has removed the host ends of the veths of
// the namespaces topo deleted. It gives up quietly after settleTimeout:
// what is left is then a lone veth end that the next plan removes.
func (k *Kernel) Settle(ctx context.Context) {
	marks := k.dying.take()
	if len(marks) == 0 {
		return
	}
	deadline := time.Now().Add(settleTimeout)
	// Notifications say when each link goes, without taking the rtnl lock
	// the teardown needs, as a dump would. Subscribing before the dump
	// loses none.
	updates := make(chan netlink.LinkUpdate, 1024)
	done := make(chan struct{})
	defer func() {
		close(done)
		go func() {
			for range updates { // until the subscription's reader ends
			}
		}()
	}()
	subscribed := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace: &k.host, ReceiveBufferSize: 8 << 20, ReceiveBufferForceSize: true,
	}) == nil
	for time.Now().Before(deadline) && ctx.Err() == nil {
		left, err := k.hostLinksMarked(marks)
		if err != nil || len(left) == 0 {
			return
		}
		if !subscribed {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		subscribed = awaitDeleted(ctx, updates, left, deadline)
	}
}

// hostLinksMarked returns the indexes of the host links that carry one of
// marks.
func (k *Kernel) hostLinksMarked(marks map[string]bool) (map[int]bool, error) {
	h, err := k.socket("")
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := retryDump(func() ([]linkInfo, error) { return dumpLinks(h.sock) })
	if err != nil {
		return nil, err
	}
	left := map[int]bool{}
	for _, l := range links {
		if marks[l.Alias] {
			left[l.Index] = true
		}
	}
	return left, nil
}

// awaitDeleted reads link notifications until every link of left is
// deleted, the deadline passes or ctx ends. It returns false if the
// subscription broke (the kernel drops notifications a full socket cannot
// take), so that the caller looks again.
func awaitDeleted(ctx context.Context, updates <-chan netlink.LinkUpdate, left map[int]bool, deadline time.Time) bool {
	left = maps.Clone(left)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for len(left) > 0 {
		select {
		case u, ok := <-updates:
			if !ok {
				return false
			}
			if u.Header.Type == unix.RTM_DELLINK {
				delete(left, int(u.Index))
			}
		case <-timer.C:
			return true
		case <-ctx.Done():
			return true
		}
	}
	return true
}
