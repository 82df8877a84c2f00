package main

import (
	"io"
	"os"
	"runtime/debug"
	"testing"
)

// TestBulkGC: plan, up and down keep Go's default GC, as every command:
// a heap let grow to several times what is live was most of their peak
// memory at N=5000 (see bulkAnnotation).
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
	for _, verb := range []string{"plan", "up", "down", "validate"} {
		if got := run(verb); got != 100 {
			t.Errorf("%s: GC percent %d, want 100", verb, got)
		}
	}
}
