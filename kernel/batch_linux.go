package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/planner"
)

// Deleting a link makes the kernel wait for an RCU grace period and for
// the link's last references (unregister_netdevice, then netdev_run_todo:
// rcu_barrier): about 20 ms a link on an idle 2-core machine, 30-50 ms on a
// busy one, nearly all of it asleep. Profile of `topo down` at N=500 before
// this file: 97% of the wall time in the 500 veth link-dels, under 1% of
// it on CPU in topo. The kernel pays those waits once per batch, not once
// per link, when one RTM_DELLINK names a device group: every link of the
// group goes in one unregister_netdevice_many (`ip link del group G`).
// So a run of link-dels in one namespace is done as: one dump, an
// ownership check per link, each link moved to a group no other link of
// the namespace is in, and one group delete. Foreign links are never in
// the group, so they cannot go with it.

var _ applier.Batcher = (*Netlink)(nil)

// batchGroup is the first device group tried for a batch delete ("topo" in
// ASCII); the next free one is used if a link already has it.
const batchGroup = 0x746f706f

// Batch says how many steps, from the first, ApplyBatch can do together:
// a run of link deletions in one namespace, or a run of namespace
// deletions, which may follow the resolver's stop and its records'
// removal, and be followed by bridge deletions and by removals of DNS
// files and firewall rules (see netns_del_linux.go).
func (k *Netlink) Batch(steps []planner.Step) int {
	switch steps[0].Op {
	case planner.OpNetnsDel:
		return netnsDelRun(steps)
	case planner.OpResolverStop:
		n := 1
		for n < len(steps) && steps[n].Op == planner.OpRecordsDel {
			n++
		}
		if m := netnsDelRun(steps[n:]); m > 0 {
			return n + m
		}
		return 1
	}
	n := 0
	for _, s := range steps {
		// Links of one kind only: a bridge must not go in the batch of
		// the veths on it, or a veth that fails to go would lose its
		// master with no step to give it back.
		if s.Op != planner.OpLinkDel || s.NS != steps[0].NS || resourceKind(s) != resourceKind(steps[0]) {
			break
		}
		n++
	}
	return max(n, 1)
}

// netnsDelRun is how many steps, from the first, delete namespaces, then
// bridges, then files and rules. Zero if the first does not delete a
// namespace.
func netnsDelRun(steps []planner.Step) int {
	n := 0
	for n < len(steps) && steps[n].Op == planner.OpNetnsDel {
		n++
	}
	if n == 0 {
		return 0
	}
	for n < len(steps) && isBridgeDel(steps[n]) {
		n++
	}
	for n < len(steps) && isBeside(steps[n]) {
		n++
	}
	return n
}

// isBridgeDel says whether s deletes a network's bridge.
func isBridgeDel(s planner.Step) bool {
	return s.Op == planner.OpLinkDel && s.NS == "" && resourceKind(s) == "network"
}

// isBeside says whether s can run beside the deletion of namespaces and
// links: a DNS file's or firewall rules' removal. Rules name links and
// addresses as strings; neither needs a link, nor is needed by one.
func isBeside(s planner.Step) bool {
	return s.Action == planner.Destroy && (s.Op == planner.OpFileDel || s.Op == planner.OpFirewall)
}

// ApplyBatch performs a run that Batch accepted, and says per step whether
// it was done.
func (k *Netlink) ApplyBatch(ctx context.Context, steps []planner.Step) []error {
	errs := make([]error, len(steps))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if k.Batch(steps) != len(steps) {
		for i, s := range steps {
			errs[i] = k.Apply(ctx, s)
		}
		return errs
	}
	// The file and rule removals at the end run beside the rest, on the
	// CPU that the kernel's deletion of links leaves idle while it waits
	// for RCU (half of its time): Apply reports their errors itself.
	n := len(steps)
	for n > 0 && isBeside(steps[n-1]) {
		n--
	}
	var beside sync.WaitGroup
	if n < len(steps) {
		beside.Go(func() {
			for i := n; i < len(steps); i++ {
				errs[i] = k.Apply(ctx, steps[i])
			}
		})
	}
	switch steps[0].Op {
	case planner.OpResolverStop:
		k.stopResolverBatch(steps[:n], errs[:n])
	case planner.OpNetnsDel:
		k.deleteNetnsBatch(steps[:n], errs[:n])
	default:
		k.deleteLinks(steps[:n], errs[:n])
	}
	for i, s := range steps[:n] {
		if errs[i] != nil {
			errs[i] = fmt.Errorf("%s (%s): %w", describe(s), s.Resource, classify(errs[i]))
		}
	}
	beside.Wait()
	return errs
}

// deleteLinks deletes the links of steps, all in one namespace, as
// deleteLink would one by one: a missing link or namespace is success, a
// link whose alias is not the step's mark is refused.
func (k *Netlink) deleteLinks(steps []planner.Step, errs []error) {
	h, err := k.socket(steps[0].NS)
	if IsNotFound(err) {
		return
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	defer h.Close()
	h.links = nil // links change below
	all, err := retryDump(func() ([]linkInfo, error) { return dumpLinks(h.sock) })
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("list links: %w", err)
		}
		return
	}
	byName := make(map[string]linkInfo, len(all))
	for _, l := range all {
		byName[l.Name] = l
	}
	group := freeGroup(all)
	del := func(l linkInfo) error {
		err := executeOn(h.sock, linkIndexRequest(unix.RTM_DELLINK, l.Index))
		if errors.Is(err, unix.ENODEV) {
			return nil // deleted meanwhile
		}
		return err
	}

	victims, at := stepLinks(steps, byName, errs)
	if len(victims) == 1 {
		errs[at[0]] = del(victims[0])
		return
	}

	// Into the group; a link that cannot join it is deleted on its own.
	var grouped []int // indexes into victims
	for j, l := range victims {
		if err := setGroup(h.sock, l, group); err != nil {
			if !errors.Is(err, unix.ENODEV) { // else deleted meanwhile
				errs[at[j]] = del(l)
			}
			continue
		}
		grouped = append(grouped, j)
	}
	if len(grouped) == 0 {
		return
	}
	if err := deleteGroup(h.sock, group); err != nil {
		// Nothing of the group went (the kernel checks every link before
		// it deletes any): put each link back in its group and delete it
		// on its own, so that each step says what happened to it.
		for _, j := range grouped {
			l := victims[j]
			if gerr := setGroup(h.sock, l, l.Group); gerr != nil && !errors.Is(gerr, unix.ENODEV) {
				errs[at[j]] = fmt.Errorf("batch delete: %w; restore device group: %w", err, gerr)
				continue
			}
			errs[at[j]] = del(l)
		}
	}
}

// stepLinks returns the links that steps delete, found in byName, with
// the index of each one's step. A link whose alias is not its step's mark
// is refused in errs; a missing one is success: gone already, or with an
// earlier link of the run (a veth's peer), as for deleteLink.
func stepLinks(steps []planner.Step, byName map[string]linkInfo, errs []error) (victims []linkInfo, at []int) {
	for i, s := range steps {
		l, ok := byName[s.Link]
		switch {
		case !ok:
		case s.Alias != "" && l.Alias != s.Alias:
			errs[i] = fmt.Errorf("alias is %q, not %q: not topo's to delete", l.Alias, s.Alias)
		default:
			victims = append(victims, l)
			at = append(at, i)
		}
	}
	return victims, at
}

// freeGroup is a device group that none of links is in.
func freeGroup(links []linkInfo) uint32 {
	used := make(map[uint32]bool, 4)
	for _, l := range links {
		used[l.Group] = true
	}
	group := uint32(batchGroup)
	for used[group] {
		group++
	}
	return group
}

// setGroup moves link l into device group g.
//
// Equivalent to: `ip [-n NS] link set LINK group G`
func setGroup(sh *nl.SocketHandle, l linkInfo, g uint32) error {
	req := linkIndexRequest(unix.RTM_SETLINK, l.Index)
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(g)))
	return executeOn(sh, req)
}

// deleteGroup deletes every link of a device group in the namespace of
// sh, in one request.
//
// Equivalent to: `ip [-n NS] link del group GROUP`
func deleteGroup(sh *nl.SocketHandle, group uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	err := executeOn(sh, req)
	if errors.Is(err, unix.ENODEV) {
		return nil // the group is empty: its links went meanwhile
	}
	return err
}

// linkIndexRequest is a request of type typ about the link of index i.
func linkIndexRequest(typ, i int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(i)
	req.AddData(msg)
	return req
}

// execute sends a request netlink.Handle has no call for (a group
// delete, a link created with its master, a link changed by name) in a
// namespace, on its cached socket, and waits for the kernel's answer.
func (k *Netlink) execute(ns string, req *nl.NetlinkRequest) error {
	h, err := k.socket(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	h.links = nil // a change: what the observation read may be out of date
	return executeOn(h.sock, req)
}

// executeOn sends req on sh, numbered after sh's previous request.
func executeOn(sh *nl.SocketHandle, req *nl.NetlinkRequest) error {
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sh}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// resourceKind is the first word of a step's resource: network, endpoint,
// container.
func resourceKind(s planner.Step) string {
	kind, _, _ := strings.Cut(s.Resource, " ")
	return kind
}
