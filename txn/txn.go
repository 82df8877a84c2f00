// Package txn makes `up` and `down` transactions: each step is journaled
// before it runs (package journal), one process changes a project at a time
// (package lock), `up` checks the kernel against the file when it is done
// and rolls back when they differ, and an interrupted transaction (kill -9,
// power loss) is undone by the next `up` or `down` before it does anything
// else.
//
// Recovery. The journal says, for each step of the interrupted run, whether
// it started, finished, failed, or had its undo start or finish. Recovery
// undoes, last first, every step that may be in effect. A step that was in
// flight may have happened wholly, partly or not at all; its undo must be
// safe in each case:
//   - deleting what is missing succeeds (the kernel's contract);
//   - creating what exists with the step's own mark succeeds;
//   - a namespace or link that a create left half made (created, not yet
//     marked: an empty /run/netns file, a namespace whose lo has no alias, a
//     bridge or veth without its alias) is deleted. It is topo's: the
//     planner checked, under the lock, that the name was free, and only the
//     one step in flight can have left it. Objects carrying another mark
//     are never touched.
//
// After recovery, `up` plans from a fresh observation and converges; `down`
// removes whatever carries the project's mark. The kernel stays the truth:
// the journal only tells recovery how to put back what the interrupted run
// had changed.
package txn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/journal"
	"github.com/topolab/topo/lock"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/registry"
	"github.com/topolab/topo/safedir"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"golang.org/x/sys/unix"
)

// LockFile is the lock's name in the project's runtime folder.
const LockFile = names.LockFile

// Hook hears about a transaction's steps (see applier.Hook), and first
// about the plan about to run.
type Hook interface {
	applier.Hook
	Planned(*planner.Plan)
}

// Project runs transactions on one project.
type Project struct {
	Name string
	// Machine observes and performs steps; tests wrap it to inject
	// faults (machine.Faults).
	Machine machine.Machine
	// Hook hears about each step; may be nil.
	Hook Hook
	// Notes receives what recovery finds and does; may be nil.
	Notes io.Writer
	// Runtime locates the runtime files; the zero value is
	// names.DefaultRuntime.
	Runtime names.Runtime
	// Dir is the runtime folder; "" means Runtime's folder of the project.
	Dir string
	// Preflight, when set, checks a plan before its transaction begins
	// (the firewall backend, say); its error stops the run with nothing
	// changed.
	Preflight func(*planner.Plan) error
	// Host is the host of a file with hosts whose part up applies; ""
	// for the one whose address the machine has.
	Host string

	lock *lock.Lock
	// host is the host-wide lock (names.HostLockName), taken after the
	// project's and held for the whole transaction: see Lock.
	host *lock.Lock
}

func (p *Project) dir() string {
	if p.Dir != "" {
		return p.Dir
	}
	return p.options().Runtime.Project(p.Name)
}

// tree is the runtime folder that holds the project's: every file of
// both is reached without following links (see package safedir).
func (p *Project) tree() safedir.Tree { return journal.Tree(p.dir()) }

// options are the planner's: the runtime's paths.
func (p *Project) options() planner.Options {
	rt := p.Runtime
	if rt.Root == "" {
		rt = names.DefaultRuntime
	}
	return planner.Options{Runtime: rt, Host: p.Host}
}

func (p *Project) note(format string, args ...any) {
	if p.Notes != nil {
		fmt.Fprintf(p.Notes, format+"\n", args...)
	}
}

// Lock takes the project's lock, then the host-wide one, waiting up to
// timeout for each; waiting is called once, with the holder's pid and
// whether it waits for the host's lock, if it has to wait. Unlock
// releases them.
//
// The host's lock is held from the first observation to the last step,
// not around the shared steps alone: a plan depends on what other
// projects have (the shared chains and jumps a first up creates and a last
// down removes, ip_forward and its record, the subnets and random host
// ports other projects took), so a plan made while another project
// changes them would be stale by the time it runs. Two projects' ups
// therefore run one after the other; a project's own lock is always taken
// first, so that no two processes wait for each other.
func (p *Project) Lock(ctx context.Context, timeout time.Duration, waiting func(pid int, host bool)) error {
	l, err := lock.Acquire(ctx, p.tree(), filepath.Join(p.dir(), LockFile), timeout, func(pid int) {
		if waiting != nil {
			waiting(pid, false)
		}
	})
	if err != nil {
		return fmt.Errorf("project %s: %w", p.Name, err)
	}
	h, err := lock.Acquire(ctx, p.tree(), p.hostLockPath(), timeout, func(pid int) {
		if waiting != nil {
			waiting(pid, true)
		}
	})
	if err != nil {
		return errors.Join(fmt.Errorf("project %s: the host's lock, which one topo changing any project holds: %w", p.Name, err), l.Release())
	}
	p.lock, p.host = l, h
	return nil
}

// hostLockPath is the host's lock, beside the projects' folders.
func (p *Project) hostLockPath() string {
	return filepath.Join(filepath.Dir(p.dir()), names.HostLockName)
}

// Unlock releases the lock, if held. When the lock is all that is left in
// the runtime folder (a run that changed nothing, or only kernel objects),
// it removes the lock and the folder too, so that topo leaves no trace
// beyond what the project needs.
func (p *Project) Unlock() error {
	if p.lock == nil {
		return nil
	}
	entries, err := p.tree().ReadDir(p.dir())
	if err == nil && len(entries) == 1 && entries[0].Name() == LockFile {
		return p.removeFiles()
	}
	err = p.lock.Release()
	p.lock = nil
	return errors.Join(err, p.releaseHost())
}

// releaseHost releases the host's lock. When no project's folder is left
// in the root (this was the last project), it removes the lock too, and
// the root if that leaves it empty; a waiter that opened the removed lock
// notices and makes a new one (see lock.Remove).
func (p *Project) releaseHost() error {
	if p.host == nil {
		return nil
	}
	h := p.host
	p.host = nil
	root := filepath.Dir(p.dir())
	entries, err := p.tree().ReadDir(root)
	if err != nil || slices.ContainsFunc(entries, fs.DirEntry.IsDir) {
		return h.Release()
	}
	err = h.Remove()
	if p.Dir == "" {
		// Only topo's own root, and only when empty (lock.Acquire makes
		// it again, even if this races with it); rmdir(2), which
		// removes no link.
		_ = unix.Rmdir(root)
	}
	return err
}

// endRollback ends a transaction that rolled back after err. If the
// rollback was incomplete the journal stays open, so that the next up or
// down tries the failed undos again.
func (p *Project) endRollback(w *journal.Writer, err error) error {
	if w == nil {
		return nil
	}
	var se *applier.StepError
	var ve *VerifyError
	if errors.As(err, &se) && se.Rollback != nil || errors.As(err, &ve) && ve.Rollback != nil {
		return w.Close()
	}
	return p.end(w, journal.RecRolledBack)
}

// end closes a transaction with rec, then deletes the journal: the end
// record makes the transaction finished should the deletion not happen;
// the deletion keeps the runtime folder to what the project needs.
func (p *Project) end(w *journal.Writer, rec string) error {
	if w == nil {
		return nil // a down on a full disk, without a journal
	}
	if err := w.End(rec); err != nil {
		return err
	}
	return journal.Remove(p.dir())
}

// Pending returns the project's interrupted transaction, or nil.
func (p *Project) Pending() (*journal.Pending, error) {
	return journal.Read(p.dir())
}

// VerifyError says that after every step of up the kernel still differed
// from the file; the run was rolled back.
type VerifyError struct {
	// Diff is the plan from the kernel as up left it to the file: what
	// differed.
	Diff *planner.Plan
	// RolledBack counts the undone steps; Rollback holds their failures.
	RolledBack int
	Rollback   error
	// Compared is how the kernel after the rollback compares with the
	// snapshot taken before the run.
	Compared *planner.Comparison
}

func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("after all steps the kernel still differs from the file in %d steps (first: %s)", len(e.Diff.Steps), e.Diff.Steps[0])
	if e.Rollback != nil {
		return msg + fmt.Sprintf("; rollback of %d steps was incomplete: %v; %s", e.RolledBack, e.Rollback, e.Compared)
	}
	return msg + fmt.Sprintf("; rolled back %d steps, %s", e.RolledBack, e.Compared)
}

func (e *VerifyError) Unwrap() error { return e.Rollback }

// Result is what a transaction did.
type Result struct {
	// Recovered is the interrupted transaction undone first, or nil.
	Recovered *journal.Pending
	// Plan is the plan that ran (empty when there was nothing to do).
	Plan *planner.Plan
}

// Up makes the kernel match f: it undoes an interrupted transaction, plans
// from a fresh observation, runs the plan with a journal, and verifies.
// The caller holds the lock. When ctx is cancelled (Ctrl-C) the run stops
// at the next step boundary and rolls back; once every step is done it
// verifies and commits.
func (p *Project) Up(ctx context.Context, f *spec.File) (*Result, error) {
	res, before, err := p.start(ctx)
	if err != nil {
		return res, err
	}
	plan, _, err := planner.Up(f, before, p.options())
	if err != nil {
		return res, err
	}
	res.Plan = plan
	if plan.Empty() {
		return res, nil
	}
	w, a, err := p.begin("up", plan)
	if err != nil {
		return res, err
	}
	if err := a.Apply(ctx, plan); err != nil {
		p.compare(ctx, err, before)
		return res, errors.Join(err, p.endRollback(w, err))
	}
	// Verify: the kernel, observed again, must need no further step. An
	// interrupt that came after the last step does not stop this: the
	// run is done, and ends committed or rolled back, never open.
	obs, err := p.Machine.Observe(context.WithoutCancel(ctx), p.Name)
	var diff *planner.Plan
	if err == nil {
		diff, _, err = planner.Up(f, obs, p.options())
	}
	if err != nil {
		err = fmt.Errorf("verify: %w", err)
		// Leave the journal open: the next up or down undoes the run.
		return res, errors.Join(err, w.Close())
	}
	if !diff.Empty() {
		ve := &VerifyError{Diff: diff}
		ve.RolledBack, ve.Rollback = a.RollBack(plan)
		p.compare(ctx, ve, before)
		return res, errors.Join(ve, p.endRollback(w, ve))
	}
	return res, p.end(w, journal.RecCommit)
}

// Down removes everything that carries the project's mark, after undoing
// an interrupted transaction, and then the project's runtime files. It
// needs no file. The caller holds the lock; Down removes it with the rest.
func (p *Project) Down(ctx context.Context) (*Result, error) {
	res, before, err := p.start(ctx)
	if err != nil {
		return res, err
	}
	res.Plan = planner.Down(p.Name, before, p.options())
	if !res.Plan.Empty() {
		w, a, err := p.begin("down", res.Plan)
		if err != nil {
			return res, err
		}
		if err := a.Apply(ctx, res.Plan); err != nil {
			p.compare(ctx, err, before)
			return res, errors.Join(err, p.endRollback(w, err))
		}
		if err := p.end(w, journal.RecCommit); err != nil {
			return res, err
		}
	}
	return res, p.removeFiles()
}

// compare observes the kernel after the rollback that err reports and
// records in err how it compares with before, the snapshot the run was
// planned from: only an equal observation lets topo say that the kernel
// is as it was.
func (p *Project) compare(ctx context.Context, err error, before *state.Snapshot) {
	var c **planner.Comparison
	var se *applier.StepError
	var ve *VerifyError
	switch {
	case errors.As(err, &se):
		c = &se.Compared
	case errors.As(err, &ve):
		c = &ve.Compared
	default:
		return // nothing was rolled back
	}
	after, oerr := p.Machine.Observe(context.WithoutCancel(ctx), p.Name)
	if oerr != nil {
		*c = &planner.Comparison{Err: oerr}
		return
	}
	*c = planner.Compare(p.Name, before, after, p.options())
}

// start undoes an interrupted transaction, if any, and observes the
// kernel for the plan that follows.
func (p *Project) start(ctx context.Context) (*Result, *state.Snapshot, error) {
	res := &Result{}
	var err error
	// Recovery runs to its end even when interrupted: it is what makes the
	// kernel whole again.
	if res.Recovered, err = p.Recover(context.WithoutCancel(ctx)); err != nil {
		return res, nil, err
	}
	obs, err := p.Machine.Observe(ctx, p.Name)
	return res, obs, err
}

// removeFiles deletes the journal, the record of the last up (package
// registry), the lock (still held: see lock.Remove)
// and the runtime folder if nothing else is in it, and releases the
// host's lock.
func (p *Project) removeFiles() error {
	err := errors.Join(journal.Remove(p.dir()), registry.Remove(p.dir()))
	if p.lock != nil {
		err = errors.Join(err, p.lock.Remove())
		p.lock = nil
	}
	err = errors.Join(err, p.tree().Rmdir(p.dir()))
	return errors.Join(err, p.releaseHost())
}

func (p *Project) begin(verb string, plan *planner.Plan) (*journal.Writer, *applier.Applier, error) {
	if p.Preflight != nil {
		if err := p.Preflight(plan); err != nil {
			return nil, nil, err
		}
	}
	w, err := journal.Begin(p.dir(), verb, len(plan.Steps))
	a := &applier.Applier{Machine: p.Machine}
	switch {
	case err == nil:
		a.Journal = w
	case verb == "down" && errors.Is(err, unix.ENOSPC):
		// A down must work on a full disk, which is when it is most
		// needed. Without a journal an interrupted down is finished by
		// the next one, which removes whatever carries the project's
		// mark; what it cannot do without one is recognise a step
		// caught half done (a namespace unmounted, its file left).
		p.note("Project %s: %v; down goes on without a journal (if it is interrupted, run down again).", p.Name, err)
	default:
		return nil, nil, fmt.Errorf("%s of project %s: %w", verb, p.Name, err)
	}
	if p.Hook != nil {
		p.Hook.Planned(plan)
		a.Hook = p.Hook
	}
	return w, a, nil
}

// Recover undoes the project's interrupted transaction, if any, and returns
// it (nil when there was none). Steps whose undo fails are reported in the
// notes and in the returned error's text only when nothing could be
// undone at all: the plan that follows starts from a fresh observation, so
// leftovers that carry the project's mark are converged or removed anyway.
func (p *Project) Recover(ctx context.Context) (*journal.Pending, error) {
	pend, err := journal.Read(p.dir())
	if err != nil || pend == nil {
		return nil, err
	}
	p.note("Project %s: %s; undoing it first.", p.Name, pend.Summary())
	snap, err := p.Machine.Observe(ctx, p.Name)
	if err != nil {
		return pend, fmt.Errorf("recovery of project %s: %w", p.Name, err)
	}
	t := &trust{project: p.Name, rt: p.options().Runtime, snap: snap, made: map[string]bool{}}
	w, err := journal.Append(p.dir())
	if err != nil {
		return pend, err
	}
	undone := 0
	var errs []error
	var recordErr error
	for i := len(pend.Entries) - 1; i >= 0; i-- {
		e := pend.Entries[i]
		inFlight := false
		switch e.State {
		case journal.Failed, journal.Undone:
			continue
		case journal.Started, journal.Undoing:
			inFlight = true
		}
		if e.Step.Undo == nil {
			errs = append(errs, fmt.Errorf("step %d (%s) cannot be undone", e.Index+1, e.Step.Command()))
			continue
		}
		// Undo even when a record fails (a full disk): the journal is
		// then cut back to its last whole record, which still says the
		// step may be in effect, and undoing it again is safe.
		recordErr = cmp.Or(recordErr, w.Undo(e.Index))
		err := p.undo(ctx, t, e.Step, inFlight)
		if err != nil {
			err = fmt.Errorf("undo of step %d (%s): %w", e.Index+1, e.Step.Undo.Command(), err)
			errs = append(errs, err)
		} else {
			undone++
		}
		if p.Hook != nil {
			p.Hook.RolledBack(e.Index, e.Step.Undo, err)
		}
		recordErr = cmp.Or(recordErr, w.Undone(e.Index, err))
	}
	if recordErr != nil {
		p.note("Project %s: recovery could not record its progress: %v", p.Name, recordErr)
	}
	if err := p.end(w, journal.RecRecovered); err != nil {
		return pend, err
	}
	if len(errs) > 0 {
		p.note("Project %s: undid %d steps of the interrupted %s; %d could not be undone (what carries the project's mark is converged next):\n  %v",
			p.Name, undone, pend.Verb, len(errs), errors.Join(errs...))
	} else {
		p.note("Project %s: undid %d steps of the interrupted %s.", p.Name, undone, pend.Verb)
	}
	return pend, nil
}

// undo runs the undo of s, which may have been in flight (s itself, or its
// undo, may have happened in part).
func (p *Project) undo(ctx context.Context, t *trust, s op.Step, inFlight bool) error {
	u := s.Undo.Op
	if o, ok := objectOf(u); ok && o.delete && o.mark.IsZero() {
		if c, ok := objectOf(s.Op); ok && !c.mark.IsZero() {
			// The planner's undo of a create deletes by name alone:
			// right for a rollback in the same run, which just made the
			// object. After a crash someone else may have taken the
			// name meanwhile, so recovery deletes only what carries the
			// create's mark.
			u = o.withMark(c.mark)
		}
	}
	if seq, ok := u.(op.Seq); ok {
		// A rebuild (a container with its veths): each part as an undo of
		// its own, so that what already stands is taken as done.
		for _, part := range seq.Steps {
			if err := p.runUndo(ctx, t, part.Ref, part.Op, inFlight); err != nil {
				return err
			}
		}
		return nil
	}
	return p.runUndo(ctx, t, s.Ref, u, inFlight)
}

// runUndo runs one undo u, of the step of ref, tolerating what a crash
// may have left.
//
// It runs only what trust accepts, checked when it is its turn: a
// rebuild's veths need the namespace its first part makes again.
func (p *Project) runUndo(ctx context.Context, t *trust, ref op.Ref, u op.Operation, inFlight bool) error {
	if b, ok := u.(op.FirewallBatch); ok {
		if b = t.firewallUndo(b); len(b.Changes) == 0 {
			return nil
		}
		u = b
	}
	if err := t.check(u); err != nil {
		return err
	}
	err := p.runUndoOnce(ctx, t, ref, u, inFlight)
	if err == nil {
		t.ran(u)
	}
	return err
}

func (p *Project) runUndoOnce(ctx context.Context, t *trust, ref op.Ref, u op.Operation, inFlight bool) error {
	if a, ok := u.(op.CNIAdd); ok && inFlight {
		// The ADD that undoes a DEL caught in flight: the DEL may not
		// have run, or the ADD may have run already (the attachment is
		// there and its CHECK passes: nothing to do), or either may have
		// stopped halfway (there, and CHECK fails: finish the DEL, then
		// ADD). A chain's ADD of what is attached fails (the bridge
		// plugin's "container veth name provided (eth1) already exists").
		if att := t.snap.CNIAttachment(a.Network, a.NS, a.IfName); att != nil {
			if att.Check == "" {
				return nil
			}
			if err := p.Machine.Apply(ctx, op.CNIDel(a)); err != nil {
				return err
			}
		}
	}
	o, isObject := objectOf(u)
	// Only an object named as the step's own is taken for one its create
	// left half made.
	inFlight = inFlight && isObject && t.derived(o, ref)
	if inFlight && o.delete && !o.mark.IsZero() {
		// A create interrupted before it marked its object: delete the
		// object without the ownership check, which would refuse it.
		if mark, exists, err := p.observeMark(ctx, o); err != nil {
			return err
		} else if exists && mark == "" {
			u = o.withMark(names.Mark{})
		}
	}
	err := p.Machine.Apply(ctx, u)
	if err == nil || !machine.IsExist(err) {
		return err
	}
	// A create that finds its object there: fine if it carries the step's
	// mark; if it carries none and the step was in flight, it is the half
	// of an interrupted create or delete: remove it and create it again.
	if !isObject {
		return nil // an address or route: it is there, as wanted
	}
	mark, exists, oerr := p.observeMark(ctx, o)
	switch {
	case oerr != nil:
		return errors.Join(err, oerr)
	case exists && mark == o.mark.String():
		return nil
	case exists && mark == "" && inFlight:
		if derr := p.Machine.Apply(ctx, o.forceDelete()); derr != nil {
			return errors.Join(err, derr)
		}
		return p.Machine.Apply(ctx, u)
	}
	return err
}

// object is a namespace or link that an operation creates or deletes by
// name, with the mark it gives or checks.
type object struct {
	netns  bool
	delete bool
	ns     string // the namespace, or the link's namespace ("" host)
	link   string
	mark   names.Mark
}

// objectOf names the object of a create or delete of a namespace or link.
func objectOf(o op.Operation) (object, bool) {
	switch o := o.(type) {
	case op.NetnsAdd:
		return object{netns: true, ns: o.NS, mark: o.Mark}, true
	case op.NetnsDel:
		return object{netns: true, delete: true, ns: o.NS, mark: o.Mark}, true
	case op.BridgeAdd:
		return object{ns: o.NS, link: o.Link, mark: o.Mark}, true
	case op.VethAdd:
		return object{ns: o.NS, link: o.Link, mark: o.Mark}, true
	case op.MacvlanAdd:
		return object{ns: o.NS, link: o.Link, mark: o.Mark}, true
	case op.LinkDel:
		return object{delete: true, ns: o.NS, link: o.Link, mark: o.Mark}, true
	}
	return object{}, false
}

// withMark is the deletion of the object, checking mark (none when zero).
func (o object) withMark(mark names.Mark) op.Operation {
	if o.netns {
		return op.NetnsDel{NS: o.ns, Mark: mark}
	}
	return op.LinkDel{NS: o.ns, Link: o.link, Mark: mark}
}

// forceDelete deletes the object without checking its mark.
func (o object) forceDelete() op.Operation { return o.withMark(names.Mark{}) }

// observeMark reads the object's mark from the kernel.
func (p *Project) observeMark(ctx context.Context, o object) (mark string, exists bool, err error) {
	snap, err := p.Machine.Observe(ctx, p.Name)
	if err != nil {
		return "", false, err
	}
	if o.netns {
		if n := snap.Namespace(o.ns); n != nil {
			return n.Mark, true, nil
		}
		return "", false, nil
	}
	var n *state.Namespace
	if o.ns == "" {
		n = &snap.Host
	} else if n = snap.Namespace(o.ns); n == nil {
		return "", false, nil
	}
	if l := n.Link(o.link); l != nil {
		return l.Alias, true, nil
	}
	return "", false, nil
}
