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

// sysctls are set, in order, in every sandbox, to the kernel's defaults. A
// new network namespace copies IPv4's conf/all and conf/default settings
// from the host's (net.core.devconf_inherit_init_net 0, the default; with
// 1 IPv6's too), so a host that forwards, as every Docker host does, would
// otherwise give its sandboxes ip_forward=1. Writing ip_forward sets
// conf/all and conf/default forwarding with it. A key the kernel lacks
// (IPv6 off at boot) is left out.
var sysctls = []struct{ key, value string }{
	{"net.ipv4.ip_forward", "0"},
	{"net.ipv4.conf.all.rp_filter", "0"},
	{"net.ipv4.conf.default.rp_filter", "0"},
	{"net.ipv4.conf.all.route_localnet", "0"},
	{"net.ipv4.conf.default.route_localnet", "0"},
	{"net.ipv6.conf.all.forwarding", "0"},
	{"net.ipv6.conf.default.forwarding", "0"},
	{"net.ipv6.conf.all.disable_ipv6", "0"},
	{"net.ipv6.conf.default.disable_ipv6", "0"},
}

// sysctlPath is the file of a sysctl key under /proc/sys.
func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
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
		if m.fstype == "tmpfs" {
			if err := detachAll(m.target); err != nil {
				return err
			}
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	if err := os.Mkdir("/run/netns", 0o755); err != nil {
		return err
	}
	for _, s := range sysctls {
		path := sysctlPath(s.key)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if err := os.WriteFile(path, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s.key, s.value, err)
		}
	}
	if err := loUp(); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// detachAll unmounts, lazily, every mount at or below target in the
// sandbox's copy of the host's mounts (a host's /run/netns, shared, once ip
// netns has run there), so that the tmpfs mounted there next hides
// nothing: mountinfo then shows only the sandbox's own mounts there. / is
// private by then, so the host keeps its mounts. A lazy unmount takes the
// mounts below with it, so the order does not matter; one mount point
// listed twice (stacked mounts) is unmounted twice.
func detachAll(target string) error {
	for _, m := range mountsUnder(target) {
		// EINVAL, ENOENT: gone with a mount above it.
		err := unix.Unmount(m, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return nil
}

// mountsUnder lists the mount points at or below target.
func mountsUnder(target string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// Field 5 is the mount point, with blanks written in octal.
		m := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if m == target || strings.HasPrefix(m, target+"/") {
			out = append(out, m)
		}
	}
	return out
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
		fmt.Fprintf(&b, "mkdir -p %s\n", m.target)
		if m.fstype == "tmpfs" {
			// detachAll: field 5 of mountinfo is the mount point.
			fmt.Fprintf(&b, "cut -d' ' -f5 /proc/self/mountinfo | grep -E '^%s(/|$)' | while read -r m; do umount -l \"$m\" 2>/dev/null || true; done\n", m.target)
		}
		fmt.Fprintf(&b, "mount -t %s -o %s %s %s\n", m.fstype, strings.Join(opts, ","), m.fstype, m.target)
	}
	b.WriteString("mkdir /run/netns\n")
	b.WriteString(SysctlScript())
	b.WriteString("ip link set lo up\necho ready\nexec sleep infinity\n")
	return b.String()
}

// SysctlScript is shell that sets, in the network namespace it runs in,
// the sysctls every sandbox sets (see sysctls), for the namespaces a
// test makes inside its sandbox to stand for other machines: a new
// network namespace starts with the host's IPv4 settings.
func SysctlScript() string {
	var b strings.Builder
	for _, s := range sysctls {
		path := sysctlPath(s.key)
		fmt.Fprintf(&b, "[ ! -e %s ] || echo %s > %s\n", path, s.value, path)
	}
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
