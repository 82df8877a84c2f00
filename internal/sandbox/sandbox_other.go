//go:build !linux

package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

const needsLinux = "needs Linux: kernel tests run in a private namespace"

// Main runs the tests; off Linux, Require skips the kernel ones.
func Main(m *testing.M) { os.Exit(m.Run()) }

// Require skips t: there is no sandbox off Linux.
func Require(t testing.TB) {
	t.Helper()
	t.Skip(needsLinux)
}

// Host is a sandbox for end-to-end tests; off Linux there is none.
type Host struct{}

// New skips t: there is no sandbox off Linux.
func New(t testing.TB) *Host {
	t.Helper()
	t.Skip(needsLinux)
	return nil
}

// PID is the sandbox's init; off Linux there is none.
func (h *Host) PID() int { return 0 }

// Command returns a command that fails to start: off Linux there is no
// sandbox to run it in.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return &exec.Cmd{Path: name, Args: append([]string{name}, args...), Err: errors.New(needsLinux)}
}

// Run is never reached off Linux: New skips.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	t.Skip(needsLinux)
	return ""
}
