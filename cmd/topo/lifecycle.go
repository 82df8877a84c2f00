package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/txn"
	"github.com/topolab/topo/view"
)

// The verbs that stop and start containers' commands, and nothing else.
const (
	verbStop    = "stop"
	verbStart   = "start"
	verbRestart = "restart"
)

var lifecycleShort = map[string]string{
	verbStop:    "Stop containers' commands (all, or those named); the network stays",
	verbStart:   "Start containers' commands that do not run (all, or those named)",
	verbRestart: "Stop and start containers' commands (all, or those named)",
}

func newLifecycleCmd(g *globals, verb string) *cobra.Command {
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:         verb + " [CONTAINER...]",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       lifecycleShort[verb],
		Long: `stop, start and restart change containers' commands only: namespaces,
links, addresses, rules and DNS stay as they are. stop ends a command as
down does (SIGTERM to each of its processes, SIGKILL after 10 s) and keeps
its log; ps then shows it exited (with status 137 when it had to be
killed), and plan shows its start, which up or start does. start starts
the commands that do not run (stopped, dead, or one-shots that finished),
watching each for an early exit as up does; restart stops those that run,
then starts them all. If one fails, what the command did is undone. They
wait for the project's lock as up does.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := g.openMachine(verb)
			if err != nil {
				return err
			}
			f, err := g.load()
			if err != nil {
				return err
			}
			if err := g.knownContainers(f, args); err != nil {
				return err
			}
			pr := view.NewProgress(g.stdout, 0)
			p := g.txnProject(k, f.Project, pr)
			return g.underLock(p, lockTimeout, "stopping at the next step and undoing", func(c context.Context) error {
				return g.lifecycle(c, p, f, verb, args, pr)
			}, nil)
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", defaultLockTimeout, "how long to wait for another topo changing the project")
	return cmd
}

// lifecycle plans and runs verb on the commands of the containers named
// (all with a command, for none), under the project's lock.
func (g *globals) lifecycle(c context.Context, p *txn.Project, f *spec.File, verb string, containers []string, pr *view.Progress) error {
	if pending, err := p.Pending(); err != nil || pending != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("project %s: %s; run topo up (which undoes it, then converges) or topo down first", f.Project, pending.Summary())
	}
	before, err := p.Machine.Observe(c, f.Project)
	if err != nil {
		return err
	}
	plan, err := g.lifecyclePlan(f, before, verb, containers)
	if err != nil {
		return err
	}
	if plan.Empty() {
		fmt.Fprintf(g.stdout, "Project %s: nothing to %s.\n", f.Project, verb)
		return nil
	}
	pr.Planned(plan)
	a := &applier.Applier{Machine: p.Machine, Hook: pr}
	err = a.Apply(c, plan)
	var se *applier.StepError
	if errors.As(err, &se) {
		if after, oerr := p.Machine.Observe(context.WithoutCancel(c), f.Project); oerr == nil {
			se.Compared = planner.Compare(f.Project, before, after, g.plans())
		} else {
			se.Compared = &planner.Comparison{Err: oerr}
		}
	}
	pr.Done(verb, plan, err)
	if err != nil {
		return fmt.Errorf("%s of project %s: %w", verb, f.Project, err)
	}
	return nil
}

// lifecyclePlan is verb's steps: the stops first, then the starts, each
// with its undo (a stop's is the command started again; a start's, its
// stop back to how it was).
func (g *globals) lifecyclePlan(f *spec.File, obs *state.Snapshot, verb string, containers []string) (*planner.Plan, error) {
	m, err := planner.Desire(f, obs)
	if err != nil {
		return nil, err
	}
	named := len(containers) > 0
	if !named {
		for _, sc := range f.Containers {
			if len(sc.Command) > 0 {
				containers = append(containers, sc.Name)
			}
		}
	}
	plan := &planner.Plan{Project: f.Project}
	var starts []op.Step
	var down []string
	for _, name := range containers {
		if len(f.Container(name).Command) == 0 {
			if named {
				return nil, fmt.Errorf("container %s has no command: there is nothing to %s", name, verb)
			}
			continue
		}
		var mc *planner.Container
		for _, c := range m.Containers {
			if c.Name == name {
				mc = c
			}
		}
		ref := op.Container(name)
		pidFile, log := g.runtime.PidFile(f.Project, name), g.runtime.LogFile(f.Project, name)
		o := obs.Process(name)
		running := o != nil && o.Running
		if running && verb != verbStart {
			restart := op.ProcStart{NS: o.NS, Argv: o.Argv, Privileges: o.Privileges, Env: o.Env, Dir: o.Dir, UTS: o.UTS, Log: log, PidFile: pidFile}
			plan.Steps = append(plan.Steps, op.Step{Action: op.Destroy, Ref: ref,
				Op:   op.ProcStop{NS: o.NS, Argv: o.Argv, Log: log, PidFile: pidFile, PID: o.PID, Keep: true},
				Undo: &op.Step{Action: op.Create, Ref: ref, Op: restart}})
		}
		if verb == verbStop || (running && verb == verbStart) {
			continue
		}
		if mc.NS != "" && obs.Namespace(mc.NS) == nil {
			down = append(down, name)
			continue
		}
		// Undone, a start leaves the command as it found it: stopped
		// with its record, or without one and its log.
		undo := op.ProcStop{NS: mc.NS, Argv: mc.Command, Log: log, PidFile: pidFile, Keep: o != nil, DropLog: o == nil}
		starts = append(starts, op.Step{Action: op.Create, Ref: ref,
			Op: op.ProcStart{NS: mc.NS, Argv: mc.Command, Privileges: mc.Privileges, Env: mc.Env, Dir: mc.WorkingDir,
				UTS: planner.UTSOf(g.runtime, f.Project, mc), Log: log, PidFile: pidFile},
			Undo: &op.Step{Action: op.Destroy, Ref: ref, Op: undo}})
	}
	if len(down) > 0 {
		return nil, fmt.Errorf("%s of project %s: container %s is not up (no namespace): run topo up", verb, f.Project, strings.Join(down, ", "))
	}
	plan.Steps = append(plan.Steps, starts...)
	return plan, nil
}
