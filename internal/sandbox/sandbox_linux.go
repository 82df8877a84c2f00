package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// envInside marks the test binary that Main re-executed inside a sandbox.
// The marker alone is not trusted: the process must also be PID 1 of its
// PID namespace, so a variable leaked into some other environment can never
// make kernel tests run on the host.
const envInside = "TOPO_SANDBOX_INSIDE"

const needsRoot = "needs root: kernel tests run in a private namespace"

// mode is what Main decided; Require acts on it.
var mode struct {
	called bool   // Main ran
	inside bool   // this process is the sandbox's init
	skip   string // why kernel tests skip, when not inside
}

// Main is for TestMain of packages whose tests touch the kernel in-process:
//
//	func TestMain(m *testing.M) { sandbox.Main(m) }
//
// As root, it re-executes the test binary as PID 1 of fresh network, mount
// and PID namespaces, where / is private, /run and /etc/netns are private
// tmpfs mounts, /proc and /sys are fresh and lo is up; the tests run there
// and Main exits with their status. Without root the tests run here and
// Require skips the kernel ones. Main never returns.
func Main(m *testing.M) {
	mode.called = true
	switch {
	case inside():
		mode.inside = true
		if err := setup(); err != nil {
			fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
			os.Exit(1)
		}
		os.Exit(m.Run())
	case os.Geteuid() != 0:
		mode.skip = needsRoot
		os.Exit(m.Run())
	}
	os.Exit(reexec())
}

// Require skips t unless it runs inside the sandbox that Main made. A test
// that calls Require in a package whose TestMain does not call Main fails:
// running it on the host is exactly what the sandbox exists to prevent.
func Require(t testing.TB) {
	t.Helper()
	switch {
	case mode.inside:
	case mode.skip != "":
		t.Skip(mode.skip)
	default:
		t.Fatal("sandbox.Require: the package's TestMain must call sandbox.Main")
	}
}

func inside() bool {
	return os.Getenv(envInside) == "1" && os.Getpid() == 1
}

// reexec runs this test binary again, with the same arguments, inside new
// namespaces, and returns its exit status.
func reexec() int {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envInside+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = sysProcAttr()
	// Pdeathsig fires when the thread that forked the child ends, not the
	// process; holding this goroutine on its thread until Wait returns makes
	// it mean "when this test binary dies".
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "sandbox: tests in private namespaces: %v\n", err)
	return 1
}

// sysProcAttr puts a child in new network, mount and PID namespaces. The
// mount namespace is made with Unshareflags because then the Go runtime
// itself makes / private (recursively) in the child before exec, so that no
// mount made inside can propagate to the host even on systemd machines,
// where / is shared.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:   unix.CLONE_NEWNET | unix.CLONE_NEWPID,
		Unshareflags: unix.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
}

// privateMounts are mounted, in order, over the copy of the host's mounts
// that a sandbox starts with (after / is made private). A PID namespace needs
// its own /proc, a network namespace its own /sys (or /sys/class/net shows
// the host's links); /run holds /run/netns, /run/topo and /run/xtables.lock.
// /etc/netns is a mount point, so it must exist: creating that empty
// directory is the only trace a sandbox can leave on the host.
var privateMounts = []struct {
	fstype, target string
	flags          uintptr
	data           string
}{
	{"proc", "/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"tmpfs", "/run", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
	{"tmpfs", "/etc/netns", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
}

// setup prepares the namespaces Main's child runs in; setupScript does the
// same for New.
func setup() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	for _, m := range privateMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	if err := os.Mkdir("/run/netns", 0o755); err != nil {
		return err
	}
	if err := loUp(); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// setupScript is setup as shell commands, run by the init of a Host. Its
// last lines report readiness and then hold the namespaces open.
func setupScript() string {
	var b strings.Builder
	b.WriteString("set -e\nmount --make-rprivate /\n")
	for _, m := range privateMounts {
		opts := []string{"nosuid", "nodev"}
		if m.flags&unix.MS_NOEXEC != 0 {
			opts = append(opts, "noexec")
		}
		if m.data != "" {
			opts = append(opts, m.data)
		}
		fmt.Fprintf(&b, "mkdir -p %s\nmount -t %s -o %s %s %s\n", m.target, m.fstype, strings.Join(opts, ","), m.fstype, m.target)
	}
	b.WriteString("mkdir /run/netns\nip link set lo up\necho ready\nexec sleep infinity\n")
	return b.String()
}

// loUp sets lo up in the sandbox. A plain handle is right here: every thread
// of this process was born in the sandbox's network namespace.
func loUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}
