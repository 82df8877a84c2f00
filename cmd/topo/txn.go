package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/kernel"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/txn"
)

// defaultLockTimeout is how long up and down wait for the project's lock.
const defaultLockTimeout = 30 * time.Second

// txnProject sets up a transaction runner for project: progress on stdout,
// recovery notes on stderr, and the test-only fault hooks (see faultExec).
func (g *globals) txnProject(k kernel.Kernel, project string, pr *progress) *txn.Project {
	p := &txn.Project{Name: project, Kernel: k, Notes: g.stderr, Hook: pr,
		Preflight: func(plan *planner.Plan) error { return g.firewallPreflight(k, plan) }}
	if fe := newFaultExec(k); fe != nil {
		p.Exec = fe
	}
	return p
}

// lockCtx takes the project's lock and the host's, saying who it waits
// for; it stops waiting when c is cancelled.
func (g *globals) lockCtx(c context.Context, p *txn.Project, timeout time.Duration) error {
	return p.Lock(c, timeout, func(pid int, host bool) {
		if host {
			fmt.Fprintf(g.stderr, "Another topo (pid %d) is changing a project; projects change one at a time: waiting up to %s.\n", pid, timeout)
			return
		}
		fmt.Fprintf(g.stderr, "Project %s is locked by pid %d; waiting up to %s.\n", p.Name, pid, timeout)
	})
}

// report prints how a transaction ended (its steps were printed as they
// ran): the summary, or which step failed and what was rolled back.
func (g *globals) report(pr *progress, res *txn.Result, err error, verb, project string) error {
	var se *applier.StepError
	var ve *txn.VerifyError
	ran := errors.As(err, &se) || errors.As(err, &ve)
	if res != nil && res.Plan != nil && !res.Plan.Empty() && (err == nil || ran) {
		pr.done(verb, res.Plan, err)
	}
	if ran {
		return fmt.Errorf("%s of project %s: %w", verb, project, err)
	}
	if err != nil {
		return err // a file, lock or kernel problem that says what it is about
	}
	if res.Plan.Empty() {
		fmt.Fprintf(g.stdout, "Project %s: nothing to do.\n", project)
	}
	return nil
}

// faultExec is a test-only hook, for the crash and rollback tests of topo
// itself; it is inert unless one of these is set:
//
//	TOPO_FAULT_AT=k   the k-th kernel step of this run (1-based, undos
//	                  included) fails with an injected error
//	TOPO_CRASH_AT=k   topo kills itself with SIGKILL right after the k-th
//	                  kernel step ran, before the journal records its end
type faultExec struct {
	inner           applier.Executor
	n               int
	failAt, crashAt int
}

func newFaultExec(inner applier.Executor) *faultExec {
	fail, _ := strconv.Atoi(os.Getenv("TOPO_FAULT_AT"))
	crash, _ := strconv.Atoi(os.Getenv("TOPO_CRASH_AT"))
	if fail <= 0 && crash <= 0 {
		return nil
	}
	return &faultExec{inner: inner, failAt: fail, crashAt: crash}
}

// errInjected is the failure TOPO_FAULT_AT injects.
var errInjected = errors.New("fault injected by TOPO_FAULT_AT")

func (f *faultExec) Apply(ctx context.Context, s planner.Step) error {
	f.n++
	if f.n == f.failAt {
		return fmt.Errorf("%s: %w", s.Command(), errInjected)
	}
	err := f.inner.Apply(ctx, s)
	if f.n == f.crashAt {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it to land
	}
	return err
}
