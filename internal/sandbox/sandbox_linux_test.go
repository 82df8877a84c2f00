package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests of this package run on the host, read-only, so that they can
// compare it with what happens inside a sandbox. Main is tested by running
// this test binary again with envTestMain set, which routes TestMain through
// Main.
const envTestMain = "TOPO_SANDBOX_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envTestMain) == "1" {
		Main(m)
	}
	os.Exit(m.Run())
}

// hostLinks lists the names of the links of the test process's own network
// namespace. It only reads.
func hostLinks(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip -o link show: %v", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	slices.Sort(names)
	return names
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(needsRoot)
	}
}

func TestNewIsolatesLinks(t *testing.T) {
	requireRoot(t)
	before := hostLinks(t)
	h := New(t)
	h.Run(t, "ip", "link", "add", "br-sandbox", "type", "bridge")
	h.Run(t, "ip", "netns", "add", "sandbox-probe")
	if out := h.Run(t, "ip", "-o", "link", "show"); !strings.Contains(out, "br-sandbox") {
		t.Errorf("inside: br-sandbox missing from\n%s", out)
	}
	if out := h.Run(t, "ip", "netns", "list"); !strings.Contains(out, "sandbox-probe") {
		t.Errorf("inside: ip netns list = %q, want sandbox-probe", out)
	}
	if after := hostLinks(t); !slices.Equal(before, after) {
		t.Errorf("host links changed: before %v, after %v", before, after)
	}
	if _, err := os.Stat("/run/netns/sandbox-probe"); err == nil {
		t.Errorf("/run/netns/sandbox-probe appeared on the host")
	}
	if got, host := nsInode(t, fmt.Sprintf("/proc/%d/ns/net", h.PID())), nsInode(t, "/proc/self/ns/net"); got == host {
		t.Errorf("sandbox shares the host's network namespace")
	}
}

func TestNewMountsArePrivate(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	h := New(t)
	mounts := h.Run(t, "cat", "/proc/self/mountinfo")
	for _, target := range []string{"/run", "/etc/netns"} {
		if !hasMount(mounts, target, "tmpfs") {
			t.Errorf("inside: no tmpfs on %s in\n%s", target, mounts)
		}
	}
	// A mount made inside stays inside, and so does a file under /run.
	h.Run(t, "mount", "-t", "tmpfs", "tmpfs", dir)
	h.Run(t, "touch", "/run/sandbox-probe", filepath.Join("/etc/netns", "sandbox-probe"))
	own, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if hasMount(string(own), dir, "tmpfs") {
		t.Errorf("tmpfs mounted inside on %s is visible on the host", dir)
	}
	for _, p := range []string{"/run/sandbox-probe", "/etc/netns/sandbox-probe"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s appeared on the host", p)
		}
	}
	// The sandbox has its own PID namespace and a /proc that shows it.
	if got := strings.TrimSpace(h.Run(t, "sh", "-c", "echo $$")); got == "" || got == strconv.Itoa(os.Getpid()) {
		t.Errorf("inside: sh pid %q", got)
	}
	if out := h.Run(t, "ls", "/proc/1/exe"); out == "" {
		t.Errorf("inside: no /proc/1")
	}
}

// hasMount reports whether mountinfo has a mount of fstype on target.
func hasMount(mountinfo, target, fstype string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) > 4 && sep > 0 && sep+1 < len(f) && f[4] == target && f[sep+1] == fstype {
			return true
		}
	}
	return false
}

func TestNewCleanupKillsProcesses(t *testing.T) {
	requireRoot(t)
	var initPID, sleeper int
	t.Run("sandbox", func(t *testing.T) {
		h := New(t)
		initPID = h.PID()
		// Detached from everything, as a daemon a test might leave behind.
		inner := strings.TrimSpace(h.Run(t, "sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"))
		sleeper = outerPID(t, initPID, inner)
		if !alive(sleeper) {
			t.Fatalf("sleep (pid %d) not running", sleeper)
		}
	})
	if alive(initPID) {
		t.Errorf("sandbox init (pid %d) still running after cleanup", initPID)
	}
	// The kernel kills the rest of the namespace as the init dies; the
	// reaping can lag a little.
	deadline := time.Now().Add(5 * time.Second)
	for alive(sleeper) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(sleeper) {
		t.Errorf("process started inside (pid %d) survived the sandbox", sleeper)
	}
}

// outerPID finds, in this PID namespace, the process that is inner in the
// PID namespace of initPID.
func outerPID(t *testing.T, initPID int, inner string) int {
	t.Helper()
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPID))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); ns != want {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "NSpid:" && f[2] == inner {
				return pid
			}
		}
	}
	t.Fatalf("no process is pid %s inside the sandbox", inner)
	return 0
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	return len(f) > 0 && f[0] != "Z"
}

// TestMainRunsInside runs this test binary again through Main and checks
// that the tests land in a sandbox, as root, or skip with the reason.
func TestMainRunsInside(t *testing.T) {
	if os.Getenv(envTestMain) == "1" {
		t.Skip("already the re-executed binary")
	}
	before := hostLinks(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestInsideMain$", "-test.v")
	cmd.Env = append(os.Environ(), envTestMain+"=1",
		fmt.Sprintf("TOPO_SANDBOX_TEST_HOSTNS=%d", nsInode(t, "/proc/self/ns/net")))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := "--- PASS: TestInsideMain"
	if os.Geteuid() != 0 {
		want = "--- SKIP: TestInsideMain"
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("want %q in\n%s", want, out)
	}
	if after := hostLinks(t); !slices.Equal(before, after) {
		t.Errorf("host links changed: before %v, after %v", before, after)
	}
}

// TestInsideMain is the test TestMainRunsInside runs through Main.
func TestInsideMain(t *testing.T) {
	if os.Getenv(envTestMain) != "1" {
		t.Skip("run by TestMainRunsInside")
	}
	Require(t)
	if os.Getpid() != 1 {
		t.Errorf("pid = %d, want 1", os.Getpid())
	}
	if got := strconv.FormatUint(nsInode(t, "/proc/self/ns/net"), 10); got == os.Getenv("TOPO_SANDBOX_TEST_HOSTNS") {
		t.Errorf("network namespace is the host's")
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/run", "/etc/netns"} {
		if !hasMount(string(mounts), target, "tmpfs") {
			t.Errorf("no tmpfs on %s", target)
		}
	}
	if entries, err := os.ReadDir("/run/netns"); err != nil || len(entries) != 0 {
		t.Errorf("/run/netns: %v, %v; want empty", entries, err)
	}
	out, err := exec.Command("ip", "-o", "link", "show", "lo").Output()
	if err != nil || !strings.Contains(string(out), "UP") {
		t.Errorf("lo: %s %v; want UP", out, err)
	}
	checkClean(t, func(name string, args ...string) (string, error) {
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err
	})
	// Changing the kernel here is harmless; TestMainRunsInside checks that.
	if out, err := exec.Command("ip", "link", "add", "br-inside", "type", "bridge").CombinedOutput(); err != nil {
		t.Errorf("ip link add: %v\n%s", err, out)
	}
	// A child that lingers dies with this process, the namespace's init.
	if err := exec.Command("sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 &").Run(); err != nil {
		t.Error(err)
	}
}

// checkClean checks, through run (inside a sandbox), what every sandbox
// starts with whatever the host has: the sysctls at the kernel's defaults,
// no mount under /run or /etc/netns but the sandbox's own, and a
// /run/netns that `ip netns add` makes a shared mount, once.
func checkClean(t *testing.T, run func(name string, args ...string) (string, error)) {
	t.Helper()
	for _, s := range sysctls {
		got, err := run("cat", sysctlPath(s.key))
		if err != nil && strings.HasPrefix(s.key, "net.ipv6.") {
			continue // IPv6 off at boot
		}
		if strings.TrimSpace(got) != s.value {
			t.Errorf("%s = %q (%v), want %s", s.key, strings.TrimSpace(got), err, s.value)
		}
	}
	mounts := func() []string {
		t.Helper()
		info, err := run("cat", "/proc/self/mountinfo")
		if err != nil {
			t.Fatalf("mountinfo: %v", err)
		}
		var under []string
		for _, line := range strings.Split(info, "\n") {
			if f := strings.Fields(line); len(f) > 4 && (strings.HasPrefix(f[4], "/run/") || strings.HasPrefix(f[4], "/etc/netns/")) {
				under = append(under, line)
			}
		}
		return under
	}
	if m := mounts(); len(m) != 0 {
		t.Errorf("mounts under /run or /etc/netns before any namespace:\n%s", strings.Join(m, "\n"))
	}
	if out, err := run("ip", "netns", "add", "clean-probe"); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	var netns []string
	for _, line := range mounts() {
		if strings.Fields(line)[4] == "/run/netns" {
			netns = append(netns, line)
		}
	}
	if len(netns) != 1 || !strings.Contains(netns[0], " shared:") {
		t.Errorf("mounts on /run/netns after ip netns add, want one, shared:\n%s", strings.Join(netns, "\n"))
	}
	if out, _ := run("ip", "netns", "list"); strings.TrimSpace(out) != "clean-probe" {
		t.Errorf("ip netns list = %q, want clean-probe alone", out)
	}
	if out, _ := run("ls", "/etc/netns"); strings.TrimSpace(out) != "" {
		t.Errorf("/etc/netns holds %q, want nothing", out)
	}
}

// TestMainOnABusyHost runs TestInsideMain as Main runs tests, in a
// sandbox whose namespaces start as on a host that forwards and whose
// /run/netns is a shared mount with a namespace in it.
func TestMainOnABusyHost(t *testing.T) {
	if os.Getenv(envTestMain) == "1" {
		t.Skip("already the re-executed binary")
	}
	out := RerunOnBusyHost(t, "^TestInsideMain$", envTestMain+"=1")
	if !strings.Contains(out, "--- PASS: TestInsideMain") {
		t.Errorf("TestInsideMain did not pass:\n%s", out)
	}
}

// TestNewOnABusyHost: the same for New.
func TestNewOnABusyHost(t *testing.T) {
	requireRoot(t)
	h := newHost(t, busyHost)
	checkClean(t, func(name string, args ...string) (string, error) {
		out, err := h.Command(name, args...).CombinedOutput()
		return string(out), err
	})
}

// TestNewIsClean: and on this host, whatever it has.
func TestNewIsClean(t *testing.T) {
	requireRoot(t)
	h := New(t)
	checkClean(t, func(name string, args ...string) (string, error) {
		out, err := h.Command(name, args...).CombinedOutput()
		return string(out), err
	})
}
