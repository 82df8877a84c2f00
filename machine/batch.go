package machine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// Deleting a link makes the kernel wait for an RCU grace period and for
// the link's last references: about 20 ms a link on an idle 2-core
// machine, nearly all of it asleep. Deleted together, a run of links
// costs one (see machine/netlink). So the machine performs together: a
// run of link deletions in one namespace and of one kind (bridges, or
// veths); a run of namespace deletions, which may follow the resolver's
// stop and its records' removal, and be followed by bridge deletions and
// by removals of DNS files and firewall rules, which run beside them on
// the CPU the kernel's deletions leave idle. Runs of commands' starts and
// of their stops go together too: each start watches its command for an
// early exit (package daemon), each stop waits for its command to end,
// and those waits run at the same time; so do runs of namespace
// additions and of UTS namespace deletions (see side). In an up, a run of
// veths with their addresses and routes is one batch with the rules,
// files, sysctls, resolver start and UTS namespaces after it that need
// none of them (see upBatch). Batching keeps rollback exact: ApplyBatch
// says, per operation, whether it was done.

// Batch says how many of ops, from the first, ApplyBatch can do together.
func (m *Mechanisms) Batch(ops []op.Operation) int {
	switch first := ops[0].(type) {
	case op.ProcStart:
		n := 1
		for n < len(ops) && isA[op.ProcStart](ops[n]) {
			n++
		}
		return n
	case op.ProcStop:
		n := 1
		for n < len(ops) && isA[op.ProcStop](ops[n]) {
			n++
		}
		return n
	case op.VethAdd:
		return upRun(ops)
	case op.NetnsAdd:
		return run[op.NetnsAdd](ops)
	case op.UTSAdd:
		return run[op.UTSAdd](ops)
	case op.UTSDel:
		return run[op.UTSDel](ops)
	case op.ResolverStart:
		// The UTS namespaces that follow need nothing of the resolver,
		// nor it of them: they are made while it starts.
		return 1 + run[op.UTSAdd](ops[1:])
	case op.NetnsDel:
		return netnsDelRun(ops)
	case op.ResolverStop:
		n := 1
		for n < len(ops) && isA[op.RecordsDel](ops[n]) {
			n++
		}
		if k := netnsDelRun(ops[n:]); k > 0 {
			return n + k
		}
		return 1
	case op.LinkDel:
		n := 1
		// Links of one kind only: a bridge must not go in the batch of
		// the veths on it, or a veth that fails to go would lose its
		// master with no step to give it back.
		for n < len(ops) {
			l, ok := ops[n].(op.LinkDel)
			if !ok || l.NS != first.NS || l.Mark.Kind != first.Mark.Kind {
				break
			}
			n++
		}
		return n
	}
	return 1
}

// run is how many ops, from the first, are T's.
func run[T op.Operation](ops []op.Operation) int {
	n := 0
	for n < len(ops) && isA[T](ops[n]) {
		n++
	}
	return n
}

func isA[T op.Operation](o op.Operation) bool {
	_, ok := o.(T)
	return ok
}

// upRun is how many ops, from the first, make links and the addresses
// and routes on them (the kernel's part: in plan order, on one thread),
// then need none of what that part makes (run beside it, see isBesideUp).
func upRun(ops []op.Operation) int {
	made := map[[2]string]bool{}
	n := 0
	for ; n < len(ops); n++ {
		if !isLinkWork(ops[n]) {
			break
		}
		if v, ok := ops[n].(op.VethAdd); ok {
			made[[2]string{v.NS, v.Link}] = true
			made[[2]string{v.PeerNS, v.Peer}] = true
		}
	}
	for n < len(ops) && isBesideUp(ops[n], made) {
		n++
	}
	return n
}

// isLinkWork says whether o is of the kernel's part of upRun.
func isLinkWork(o op.Operation) bool {
	switch o.(type) {
	case op.VethAdd, op.AddrAdd, op.RouteAdd:
		return true
	}
	return false
}

// isBesideUp says whether o can run beside the making of links, of which
// made are the names (namespace, link): it needs no link, address or
// route of them, and none of them needs it. Rules and DNS files name
// links and addresses as strings; the resolver's sockets and the UTS
// namespaces need only the network namespaces, made before; a sysctl of
// a link is beside only if the link is not one of made.
func isBesideUp(o op.Operation, made map[[2]string]bool) bool {
	switch o := o.(type) {
	case op.FileWrite, op.FirewallBatch, op.RecordsWrite, op.ResolverStart, op.UTSAdd:
		return true
	case op.Sysctl:
		link, ok := names.SysctlLink(o.Key)
		return !ok || !made[[2]string{o.NS, link}]
	}
	return false
}

// netnsDelRun is how many ops, from the first, delete namespaces, then
// bridges, then files and rules. Zero if the first does not delete a
// namespace.
func netnsDelRun(ops []op.Operation) int {
	n := 0
	for n < len(ops) && isA[op.NetnsDel](ops[n]) {
		n++
	}
	if n == 0 {
		return 0
	}
	for n < len(ops) && isBridgeDel(ops[n]) {
		n++
	}
	for n < len(ops) && isBeside(ops[n]) {
		n++
	}
	return n
}

// isBridgeDel says whether o deletes a network's bridge.
func isBridgeDel(o op.Operation) bool {
	l, ok := o.(op.LinkDel)
	return ok && l.NS == "" && l.Mark.Kind == names.KindNetwork
}

// isBeside says whether o can run beside the deletion of namespaces and
// links: a DNS file's or firewall rules' removal. Rules name links and
// addresses as strings; neither needs a link, nor is needed by one.
func isBeside(o op.Operation) bool {
	switch o := o.(type) {
	case op.FileDel:
		return true
	case op.FirewallBatch:
		return o.OnlyRemoves()
	}
	return false
}

// ApplyBatch performs a run that Batch accepted, and says per operation
// whether it was done.
func (m *Mechanisms) ApplyBatch(ctx context.Context, ops []op.Operation) []error {
	errs := make([]error, len(ops))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if m.Batch(ops) != len(ops) {
		for i, o := range ops {
			errs[i] = m.Apply(ctx, o)
		}
		return errs
	}
	if _, ok := ops[0].(op.ProcStart); ok {
		m.Links.Settle(ctx)
		ss := make([]op.ProcStart, len(ops))
		for i, o := range ops {
			ss[i] = o.(op.ProcStart)
		}
		m.Processes.StartBatch(ss, errs)
		return errs
	}
	switch ops[0].(type) {
	case op.VethAdd:
		m.upBatch(ctx, ops, errs)
		return errs
	case op.NetnsAdd, op.UTSAdd, op.UTSDel:
		side(len(ops), func(i int) { errs[i] = m.Apply(ctx, ops[i]) })
		return errs
	case op.ResolverStart:
		// Most of a start is the resolver's own work, in its process:
		// opening its sockets in every namespace, before it says it is
		// ready.
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = m.Apply(ctx, ops[0]) })
		side(len(ops)-1, func(i int) { errs[i+1] = m.Apply(ctx, ops[i+1]) })
		wg.Wait()
		return errs
	}
	if _, ok := ops[0].(op.ProcStop); ok {
		// Each stop waits for its command to end, up to its grace: side
		// by side, N commands that ignore SIGTERM cost one grace, not N.
		var wg sync.WaitGroup
		for i, o := range ops {
			wg.Go(func() { errs[i] = m.Processes.Stop(o.(op.ProcStop)) })
		}
		wg.Wait()
		return errs
	}
	// The file and rule removals at the end run beside the rest, on the
	// CPU that the kernel's deletion of links leaves idle while it waits
	// for RCU (half of its time).
	n := len(ops)
	for n > 0 && isBeside(ops[n-1]) {
		n--
	}
	var beside sync.WaitGroup
	if n < len(ops) {
		beside.Go(func() {
			for i := n; i < len(ops); i++ {
				errs[i] = m.Apply(ctx, ops[i])
			}
		})
	}
	switch ops[0].(type) {
	case op.ResolverStop:
		m.stopResolverBatch(ops[:n], errs[:n])
	case op.NetnsDel:
		m.deleteNetns(ops[:n], errs[:n])
	default:
		m.Links.LinkDel(linkDels(ops[:n]), errs[:n])
	}
	beside.Wait()
	return errs
}

// upBatch performs a run that upRun accepted: the links, addresses and
// routes in order on this thread, and what follows them beside, in its
// own order and batches, on another. Most of a veth's making is the
// kernel's, under its networking lock; the rules, files, resolver and
// UTS namespaces need neither the lock nor the links, and take the other
// CPU. The first failure on either side stops both at their next
// operation: the rest is not run.
func (m *Mechanisms) upBatch(ctx context.Context, ops []op.Operation, errs []error) {
	n := 0
	for n < len(ops) && isLinkWork(ops[n]) {
		n++
	}
	var failed atomic.Bool
	var beside sync.WaitGroup
	beside.Go(func() {
		rest := ops[n:]
		for j := 0; j < len(rest); {
			k := min(max(m.Batch(rest[j:]), 1), len(rest)-j)
			if failed.Load() {
				notRun(errs[n+j : n+j+k])
			} else if k == 1 {
				errs[n+j] = m.Apply(ctx, rest[j])
			} else {
				copy(errs[n+j:], m.ApplyBatch(ctx, rest[j:j+k]))
			}
			for _, err := range errs[n+j : n+j+k] {
				if err != nil {
					failed.Store(true)
				}
			}
			j += k
		}
	})
	for i := range n {
		if failed.Load() {
			notRun(errs[i : i+1])
			continue
		}
		if errs[i] = m.Apply(ctx, ops[i]); errs[i] != nil {
			failed.Store(true)
		}
	}
	beside.Wait()
}

// notRun marks operations of a batch that did not run because another
// of it failed.
func notRun(errs []error) {
	for i := range errs {
		errs[i] = fmt.Errorf("%w: an operation of the same batch failed", op.ErrNotRun)
	}
}

// Making a namespace (a network or a UTS one) is mostly the kernel's
// work on the calling thread: the new namespace's state, the bind mount,
// lo. Namespaces of a run need nothing of one another, so a run of them
// is made on two threads at once (see BENCHMARKS.md), its steps' starts
// journaled together before it. So is a run of UTS namespace deletions,
// a down's first (an unmount and a file's removal each, through safedir).
const sideBySide = 2

// side calls do(i) for every i below n, on sideBySide goroutines, each
// taking the next i, and returns when all are done.
func side(n int, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(sideBySide, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				do(i)
			}
		})
	}
	wg.Wait()
}

// deleteNetns deletes a run of namespaces and the bridges after them.
func (m *Mechanisms) deleteNetns(ops []op.Operation, errs []error) {
	n := 0
	var nss []op.NetnsDel
	for n < len(ops) {
		d, ok := ops[n].(op.NetnsDel)
		if !ok {
			break
		}
		nss = append(nss, d)
		n++
	}
	m.Links.NetnsDel(nss, linkDels(ops[n:]), errs)
}

func linkDels(ops []op.Operation) []op.LinkDel {
	out := make([]op.LinkDel, len(ops))
	for i, o := range ops {
		out[i] = o.(op.LinkDel)
	}
	return out
}

// stopResolverBatch runs a resolver's stop, its records' removal and the
// namespace deletions after them as one batch: it signals the resolver,
// deletes the namespaces while the resolver ends, then waits for its end.
// The resolver's exit closes a UDP and a TCP socket in every namespace
// (about 7 ms at N=500): the namespaces' checks and unmounts no longer
// wait for it. A namespace is freed when the last of topo's handles and
// the resolver's sockets goes, whichever that is; nothing in these steps
// needs the resolver gone before, and their undos (namespaces rebuilt,
// records written, resolver started) run in reverse order, one by one.
func (m *Mechanisms) stopResolverBatch(ops []op.Operation, errs []error) {
	wait, err := m.Processes.ResolverStop(ops[0].(op.ResolverStop).Project)
	if err != nil {
		errs[0] = err
		for i := 1; i < len(errs); i++ {
			errs[i] = fmt.Errorf("%w: %w", op.ErrNotRun, err)
		}
		return
	}
	i := 1
	for ; i < len(ops); i++ {
		d, ok := ops[i].(op.RecordsDel)
		if !ok {
			break
		}
		errs[i] = m.Processes.RecordsDel(d.Project)
	}
	m.deleteNetns(ops[i:], errs[i:])
	errs[0] = wait()
}
