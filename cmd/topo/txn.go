package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/txn"
	"github.com/topolab/topo/view"
)

// defaultLockTimeout is how long up and down wait for the project's lock.
const defaultLockTimeout = 30 * time.Second

// txnProject sets up a transaction runner for project: progress on stdout,
// recovery notes on stderr, and the test-only fault hooks (see
// machine.FaultsFromEnv).
func (g *globals) txnProject(m machine.Machine, project string, pr *view.Progress) *txn.Project {
	return &txn.Project{Name: project, Machine: machine.FaultsFromEnv(m), Notes: g.stderr, Hook: pr, Runtime: g.runtime,
		Preflight: func(plan *planner.Plan) error { return g.firewallPreflight(m, plan) }}
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

// underLock runs fn holding the project's lock and the host's, then, once
// they are released and if fn succeeded, after (when not nil). An
// interrupt (Ctrl-C, SIGTERM) cancels their context, saying what follows
// (onInterrupt), and ends topo with status 130.
func (g *globals) underLock(p *txn.Project, timeout time.Duration, onInterrupt string, fn, after func(c context.Context) error) error {
	c, cancel := context.WithCancel(ctx())
	defer cancel()
	in := watchInterrupts(g.stderr, onInterrupt, cancel)
	err := g.lockCtx(c, p, timeout)
	if err == nil {
		err = fn(c)
		_ = p.Unlock()
	}
	if err == nil && after != nil && c.Err() == nil {
		err = after(c)
	}
	if sig := in.stop(); sig != nil {
		return interrupted(sig, err)
	}
	return err
}

// report prints how a transaction ended (its steps were printed as they
// ran): the summary, or which step failed and what was rolled back.
func (g *globals) report(pr *view.Progress, res *txn.Result, err error, verb, project string) error {
	var se *applier.StepError
	var ve *txn.VerifyError
	ran := errors.As(err, &se) || errors.As(err, &ve)
	if res != nil && res.Plan != nil && !res.Plan.Empty() && (err == nil || ran) {
		pr.Done(verb, res.Plan, err)
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
