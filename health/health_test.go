package health

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/safedir"
)

// command starts a process the way topo's commands are recorded, and
// returns its pid file.
func command(t *testing.T) (pidFile string, pid int) {
	t.Helper()
	dir := t.TempDir()
	pidFile = filepath.Join(dir, "db.pid")
	rec, err := daemon.Start(daemon.Spec{Argv: []string{"sleep", "60"}, LogFile: filepath.Join(dir, "db.log"), PidFile: pidFile, Tree: safedir.Runtime(dir), Ready: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = daemon.Stop(safedir.Runtime(dir), pidFile, time.Second) })
	return pidFile, rec.PID
}

// until waits for cond, polling the health file.
func until(t *testing.T, file, what string, cond func(st *Status) bool) *Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all, err := Read(file)
		if err != nil {
			t.Fatal(err)
		}
		if st := all["db"]; st != nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s: %+v", what, all["db"])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunner follows Docker's rules: failures within the start period do
// not count while starting, a success is healthy, Retries failures in a
// row are unhealthy, and the file goes when the check does. The test
// gives each run's result, and waits for the file to show it.
func TestRunner(t *testing.T) {
	pidFile, pid := command(t)
	file := filepath.Join(t.TempDir(), records.HealthFile)
	results := make(chan int)
	n := 0
	r := &Runner{File: file, Probe: func(ctx context.Context, c records.Check) (int, string) {
		select {
		case e := <-results:
			n++
			return e, fmt.Sprint("run ", n)
		case <-ctx.Done():
			return -1, "stopped"
		}
	}}
	check := records.Check{Container: "db", PidFile: pidFile, Test: []string{"true"}, Interval: 5 * time.Millisecond,
		StartInterval: 5 * time.Millisecond, StartPeriod: time.Hour, Timeout: time.Second, Retries: 3}
	r.Load([]records.Check{check})
	for i, tt := range []struct {
		exit   int
		status string
		streak int
	}{
		{1, Starting, 0}, {1, Starting, 0}, // in the start period
		{0, Healthy, 0},
		{1, Healthy, 1}, {1, Healthy, 2}, {1, Unhealthy, 3}, {1, Unhealthy, 4},
		{0, Healthy, 0},
	} {
		results <- tt.exit
		run := fmt.Sprint("run ", i+1)
		st := until(t, file, run, func(st *Status) bool { return st.Last() != nil && st.Last().Output == run })
		if st.Status != tt.status || st.FailingStreak != tt.streak || st.PID != pid {
			t.Errorf("after %s (exit %d): %+v, want %s with %d failing", run, tt.exit, st, tt.status, tt.streak)
		}
		if len(st.Log) != min(i+1, maxLog) {
			t.Errorf("after %s: %d results kept, want %d", run, len(st.Log), min(i+1, maxLog))
		}
	}
	r.Stop()
	if all, _ := Read(file); len(all) != 0 {
		t.Errorf("the file outlived Stop: %+v", all)
	}
}

// TestAwait waits for the current process's health, fails at once when it
// is unhealthy, and at the timeout while it is starting.
func TestAwait(t *testing.T) {
	pidFile, pid := command(t)
	file := filepath.Join(t.TempDir(), records.HealthFile)
	set := func(st *Status) {
		t.Helper()
		if err := write(file, map[string]*Status{"db": st}); err != nil {
			t.Fatal(err)
		}
	}
	set(&Status{Status: Healthy, PID: pid + 100000}) // another process's
	err := Await(file, "db", pidFile, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `container "db" did not become healthy within 100ms (health: starting); its healthcheck has not run yet`) {
		t.Errorf("a health of another process: %v", err)
	}
	set(&Status{Status: Unhealthy, PID: pid, FailingStreak: 3, Log: []Result{{ExitCode: 2, Output: "refused\n"}}})
	err = Await(file, "db", pidFile, time.Hour)
	if err == nil || err.Error() != `container "db" is unhealthy: its healthcheck failed 3 times in a row; the last run exited with status 2: refused` {
		t.Errorf("unhealthy: %v", err)
	}
	set(&Status{Status: Healthy, PID: pid})
	if err := Await(file, "db", pidFile, time.Hour); err != nil {
		t.Errorf("healthy: %v", err)
	}
	if err := Await(file, "db", filepath.Join(t.TempDir(), "none.pid"), time.Hour); err == nil || !strings.Contains(err.Error(), "its command does not run") {
		t.Errorf("no command: %v", err)
	}
}
