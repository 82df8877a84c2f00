package links

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
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

// batchGroup is the first device group tried for a batch delete ("topo" in
// ASCII); the next free one is used if a link already has it.
const batchGroup = 0x746f706f

// LinkDel deletes links of one namespace: one alone as `ip link del`
// does, more in one group delete.
func (k *Kernel) LinkDel(steps []op.LinkDel, errs []error) {
	if len(steps) == 1 {
		errs[0] = k.deleteLink(steps[0].NS, steps[0].Link, steps[0].Mark.String())
	} else {
		k.deleteLinks(steps, errs)
	}
	for i := range errs {
		errs[i] = classify(errs[i])
	}
}

// deleteLinks deletes the links of steps, all in one namespace, as
// deleteLink would one by one: a missing link or namespace is success, a
// link whose alias is not the step's mark is refused.
func (k *Kernel) deleteLinks(steps []op.LinkDel, errs []error) {
	h, err := k.socket(steps[0].NS)
	if machine.IsNotFound(err) {
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
func stepLinks(steps []op.LinkDel, byName map[string]linkInfo, errs []error) (victims []linkInfo, at []int) {
	for i, s := range steps {
		l, ok := byName[s.Link]
		switch {
		case !ok:
		case !s.Mark.IsZero() && l.Alias != s.Mark.String():
			errs[i] = fmt.Errorf("alias is %q, not %q: not topo's to delete", l.Alias, s.Mark)
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
func (k *Kernel) execute(ns string, req *nl.NetlinkRequest) error {
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

// executeAll sends reqs on sh in one write, numbered after sh's previous
// request, and waits for all their answers: the kernel runs them in order,
// each whatever became of the ones before it. errs[i] is reqs[i]'s
// failure. One write of a new veth peer's settings instead of one round
// trip each: a container's namespace is told its link's settings at once.
func executeAll(sh *nl.SocketHandle, reqs ...*nl.NetlinkRequest) (errs []error) {
	errs = make([]error, len(reqs))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	at := make(map[uint32]int, len(reqs))
	var out []byte
	for i, r := range reqs {
		r.Flags |= unix.NLM_F_ACK // an answer to wait for, failed or not
		r.Seq = atomic.AddUint32(&sh.Seq, 1)
		at[r.Seq] = i
		out = append(out, r.Serialize()...)
	}
	if err := unix.Sendto(sh.Socket.GetFd(), out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail(fmt.Errorf("netlink send: %w", err))
	}
	for len(at) > 0 {
		msgs, from, err := sh.Socket.Receive()
		if err != nil {
			return fail(fmt.Errorf("netlink receive: %w", err))
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			i, ok := at[m.Header.Seq]
			if !ok || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			delete(at, m.Header.Seq)
			if code := int32(nl.NativeEndian().Uint32(m.Data[:4])); code != 0 {
				errs[i] = unix.Errno(-code)
			}
		}
	}
	return errs
}
