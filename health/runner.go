package health

import (
	"context"
	"encoding/json"
	"log"
	"path/filepath"
	"sync"
	"time"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/resolver/records"
)

// Runner runs a project's healthchecks, each in a goroutine of its own,
// and writes their statuses to File after every result.
type Runner struct {
	File string
	Log  *log.Logger
	// Probe runs one check; nil is Probe, which tests replace.
	Probe func(ctx context.Context, c records.Check) (exit int, output string)

	mu      sync.Mutex
	status  map[string]*Status
	running map[string]*running
}

type running struct {
	check  string // the check's JSON: a changed one is started again
	cancel context.CancelFunc
	done   chan struct{}
}

// Load runs checks: those that are new or changed start (again), with
// Starting; those that are gone stop and leave the file.
func (r *Runner) Load(checks []records.Check) {
	r.mu.Lock()
	if r.status == nil {
		r.status, r.running = map[string]*Status{}, map[string]*running{}
	}
	want := map[string]records.Check{}
	for _, c := range checks {
		want[c.Container] = c
	}
	var stopping []*running
	for name, run := range r.running {
		c, ok := want[name]
		if ok && run.check == key(c) {
			delete(want, name)
			continue
		}
		run.cancel()
		stopping = append(stopping, run)
		delete(r.running, name)
		delete(r.status, name)
	}
	for name, c := range want {
		ctx, cancel := context.WithCancel(context.Background())
		run := &running{check: key(c), cancel: cancel, done: make(chan struct{})}
		r.running[name] = run
		r.status[name] = &Status{Status: Starting, PID: r.pidOf(c)}
		go func() {
			defer close(run.done)
			r.loop(ctx, c)
		}()
	}
	r.save()
	r.mu.Unlock()
	for _, run := range stopping {
		<-run.done
	}
}

// Stop ends every check and removes the file.
func (r *Runner) Stop() {
	r.Load(nil)
	_ = records.RuntimeTree(r.File).Remove(r.File)
}

// Probe runs c's test once, as the container's command runs, cut at its
// timeout or when ctx ends.
func Probe(ctx context.Context, c records.Check) (int, string) {
	return daemon.Probe(ctx, daemon.Spec{Argv: c.Test, NS: c.NS, UTS: c.UTS, Tree: records.RuntimeTree(filepath.Dir(c.PidFile)), Env: c.Env, Dir: c.Dir, Confined: true, Privileges: c.Privileges},
		c.Timeout, maxOutput)
}

func key(c records.Check) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// pidOf is the process of c's command while it runs, else 0. Its pid
// file is in the runtime root of r's file, reached without following
// links (see package safedir).
func (r *Runner) pidOf(c records.Check) int {
	rec, alive, err := daemon.Read(records.RuntimeTree(r.File), c.PidFile)
	if err != nil || rec == nil || !alive {
		return 0
	}
	return rec.PID
}

// loop runs c as Docker's monitor does: the first run one interval after
// the start, StartInterval instead while starting within StartPeriod.
func (r *Runner) loop(ctx context.Context, c records.Check) {
	since := time.Now()
	for {
		wait := c.Interval
		if c.StartPeriod > 0 && time.Since(since) < c.StartPeriod && r.statusOf(c.Container) == Starting {
			wait = c.StartInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		pid := r.pidOf(c)
		if pid == 0 {
			continue // the command does not run: nothing to check
		}
		if r.restarted(c.Container, pid) {
			since = time.Now()
		}
		start := time.Now()
		probe := r.Probe
		if probe == nil {
			probe = Probe
		}
		exit, out := probe(ctx, c)
		if ctx.Err() != nil {
			return
		}
		r.record(c, pid, Result{Start: start, End: time.Now(), ExitCode: exit, Output: out}, start.Sub(since))
	}
}

func (r *Runner) statusOf(container string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.status[container]; st != nil {
		return st.Status
	}
	return ""
}

// restarted resets the status when the command's process is another
// than the one checked so far.
func (r *Runner) restarted(container string, pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status[container]
	if st == nil || st.PID == pid {
		return false
	}
	*st = Status{Status: Starting, PID: pid}
	r.save()
	return true
}

// record applies a result as Docker's handleProbeResult does: success is
// healthy; a failure counts, unless it comes within the start period
// while starting, and Retries of them in a row are unhealthy.
func (r *Runner) record(c records.Check, pid int, res Result, sinceStart time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status[c.Container]
	if st == nil || st.PID != pid {
		return // stopped, or restarted, meanwhile
	}
	if len(res.Output) > maxOutput {
		res.Output = res.Output[:maxOutput]
	}
	st.Log = append(st.Log, res)
	if len(st.Log) > maxLog {
		st.Log = st.Log[len(st.Log)-maxLog:]
	}
	switch {
	case res.ExitCode == 0:
		st.Status, st.FailingStreak = Healthy, 0
	case st.Status == Starting && sinceStart < c.StartPeriod:
	default:
		st.FailingStreak++
		if st.FailingStreak >= c.Retries {
			st.Status = Unhealthy
		}
	}
	r.save()
}

// save writes the statuses; r.mu is held.
func (r *Runner) save() {
	if err := write(r.File, r.status); err != nil && r.Log != nil {
		r.Log.Printf("health: write %s: %v", r.File, err)
	}
}
