package main

import (
	"io"
	"os"
	"runtime/debug"
	"testing"
)

// TestBulkGC: plan, up and down collect garbage less often, unless GOGC
// says otherwise; other commands keep the default.
func TestBulkGC(t *testing.T) {
	// The hook alone: running the commands would touch the kernel.
	run := func(verb string) int {
		t.Helper()
		root := newRootCmd(io.Discard, io.Discard, env{})
		sub, _, err := root.Find([]string{verb})
		if err != nil {
			t.Fatal(err)
		}
		root.PersistentPreRun(sub, nil)
		return debug.SetGCPercent(100)
	}
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set")
	}
	for _, verb := range []string{"plan", "up", "down"} {
		if got := run(verb); got != bulkGCPercent {
			t.Errorf("%s: GC percent %d, want %d", verb, got, bulkGCPercent)
		}
	}
	if got := run("validate"); got != 100 {
		t.Errorf("validate: GC percent %d, want 100", got)
	}
	t.Setenv("GOGC", "100")
	if got := run("down"); got != 100 {
		t.Errorf("down with GOGC=100: GC percent %d, want 100", got)
	}
}
