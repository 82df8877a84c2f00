package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/op"
)

func TestMain(m *testing.M) {
	// The floor's process is this test binary again (floorCommand).
	if ok, code := floorMain(os.Args[1:]); ok {
		os.Exit(code)
	}
	sandbox.Main(m)
}

// TestFloorLeavesTopoState runs the benchmark's check for real, in the
// sandbox: at a small N the kernel floor's up leaves the kernel topo's up
// leaves (as topo observes it), and its down the kernel from before.
func TestFloorLeavesTopoState(t *testing.T) {
	sandbox.Require(t)
	bin := filepath.Join(t.TempDir(), "topo")
	_, self, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", bin, "./cmd/topo")
	build.Dir = filepath.Join(filepath.Dir(self), "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building topo: %v\n%s", err, out)
	}
	o := &options{k: 2, topo: bin, timeout: 2 * time.Minute}
	if err := checkFloor(context.Background(), o, t.TempDir(), 5); err != nil {
		t.Fatal(err)
	}
}

// TestFloorRefusesWhatItDoesNotMake: a plan with an operation the floor
// does not know makes no target, rather than a floor that makes less
// than topo.
func TestFloorRefusesWhatItDoesNotMake(t *testing.T) {
	steps := []op.Step{{Action: op.Create, Ref: op.Container("c0"), Op: op.NetnsAdd{NS: "bench-c0"}},
		{Action: op.Create, Ref: op.Container("c0"), Op: op.LinkUp{NS: "bench-c0", Link: "lo"}}}
	_, err := floorOf(steps, "")
	if err == nil || !strings.Contains(err.Error(), "the floor does not make") {
		t.Fatalf("floorOf: %v, want a refusal of the link-up", err)
	}
}
