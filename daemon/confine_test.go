package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/safedir"
)

// confinedIn starts argv confined in a fresh named namespace and returns
// its record and the folder of its files; the test stops it.
func confinedIn(t *testing.T, ns string, p privilege.Settings, argv ...string) (*Record, string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	dir := t.TempDir()
	rec, err := Start(Spec{Tree: safedir.Runtime(dir), Argv: argv, NS: ns, Confined: true, Privileges: p,
		LogFile: filepath.Join(dir, "log"), PidFile: filepath.Join(dir, "pid")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(safedir.Runtime(dir), filepath.Join(dir, "pid"), time.Second) })
	return rec, dir
}

// waitLog waits for the log in dir to hold want.
func waitLog(t *testing.T, dir, want string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "log")); strings.Contains(string(b), want) {
			return string(b)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	t.Fatalf("log never showed %q:\n%s", want, b)
	return ""
}

func status(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// TestConfinedCommand: a confined command runs in its namespace with its
// /etc/netns files, in a PID namespace of its own where it is the first
// process, with Docker's capabilities and CAP_NET_ADMIN, a clean
// environment and a log only root reads; the pid file carries its PID
// namespace.
func TestConfinedCommand(t *testing.T) {
	sandbox.Require(t)
	t.Setenv("TOPO_TEST_SECRET", "leaked")
	os.MkdirAll("/etc/netns/dc", 0o755)
	os.WriteFile("/etc/netns/dc/hosts", []byte("10.9.9.9 only-in-dc\n"), 0o644)
	t.Cleanup(func() { os.RemoveAll("/etc/netns/dc") })
	rec, dir := confinedIn(t, "dc", privilege.Settings{},
		"sh", "-c", "echo pid=$$; cat /etc/hosts; ls /sys/class/net; env; echo DONE; exec sleep 1000")
	log := waitLog(t, dir, "DONE")
	for _, want := range []string{"pid=1\n", "only-in-dc", "\nlo\n", "HOME=/root\n", "TERM=dumb\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "TOPO_TEST_SECRET") {
		t.Errorf("topo's environment reached the command:\n%s", log)
	}
	if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", rec.PID)); l == "" || l == mustReadlink(t, "/proc/thread-self/ns/net") {
		t.Errorf("the command's network namespace is %q, this test's", l)
	}
	ns, err := pidNS(rec.PID)
	if err != nil || ns != rec.PidNS || ns == 0 {
		t.Errorf("pid namespace %d, %v; recorded %d", ns, err, rec.PidNS)
	}
	want := fmt.Sprintf("%016x", uint64(privilege.Default|privilege.NetAdmin)&bounding(t))
	for _, f := range []string{"CapBnd", "CapPrm", "CapEff"} {
		if got := status(t, rec.PID, f); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	for f, want := range map[string]string{"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1"} {
		if got := status(t, rec.PID, f); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	for _, f := range []string{"log", "pid"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, fi, err)
		}
	}
	// topo's own thread, and this test's, kept their namespaces.
	if mustReadlink(t, "/proc/self/ns/pid") == mustReadlink(t, fmt.Sprintf("/proc/%d/ns/pid", rec.PID)) {
		t.Error("the command is in this test's PID namespace")
	}
}

func mustReadlink(t *testing.T, p string) string {
	t.Helper()
	l, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// bounding is this test's bounding set: no command gets more.
func bounding(t *testing.T) uint64 {
	m, err := strconv.ParseUint(status(t, os.Getpid(), "CapBnd"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConfinedStopEndsEverything: Stop ends a confined command and every
// process it started, the one that left its session too; a leader that
// does not catch SIGTERM (which the kernel drops for a PID namespace's
// first process) is killed once the rest have ended, after they had their
// SIGTERM: here a child that takes its time to end on it. A grace of an
// hour that Stop waited out would time the test out.
func TestConfinedStopEndsEverything(t *testing.T) {
	sandbox.Require(t)
	rec, dir := confinedIn(t, "ds", privilege.Settings{}, "sh", "-c",
		`setsid sh -c 'trap "sleep 0.3; echo child ended on TERM; exit 0" TERM; echo child ready; while :; do sleep 0.05; done' & exec sleep 1000`)
	waitLog(t, dir, "child ready")
	children := inNamespace(rec.PidNS, rec.PID)
	if len(children) == 0 {
		t.Fatal("no child in the command's PID namespace")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- Stop(safedir.Runtime(dir), filepath.Join(dir, "pid"), time.Hour) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Stop waited for the grace: the leader ignores SIGTERM only as a PID namespace's first process")
	}
	waitLog(t, dir, "child ended on TERM")
	for _, pid := range append(children, rec.PID) {
		if st, state, err := stat(pid); err == nil && state != "Z" && (pid != rec.PID || st == rec.Start) {
			t.Errorf("process %d (%s) runs after Stop", pid, state)
		}
	}
}

// TestConfinedLeaderEndsItsChildren: when a confined command's leader
// exits, the kernel ends what it started, in its session or not, as
// Docker ends a container with its main process.
func TestConfinedLeaderEndsItsChildren(t *testing.T) {
	sandbox.Require(t)
	flag := filepath.Join(t.TempDir(), "go")
	rec, dir := confinedIn(t, "dl", privilege.Settings{}, "sh", "-c",
		`setsid sleep 1000 & sleep 1000 & echo started; while [ ! -e `+flag+` ]; do sleep 0.02; done`)
	waitLog(t, dir, "started")
	var children []int
	for deadline := time.Now().Add(20 * time.Second); len(children) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		children = inNamespace(rec.PidNS, rec.PID)
	}
	if len(children) < 2 {
		t.Fatalf("children in the command's PID namespace: %v, want its two sleeps", children)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); alive(rec) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	for _, pid := range children {
		if _, state, err := stat(pid); err == nil && state != "Z" {
			t.Errorf("child %d (%s) of an ended command runs on", pid, state)
		}
	}
}

func TestRecordOfAnotherPidNSIsNotAlive(t *testing.T) {
	st, _ := startTime(os.Getpid())
	if alive(&Record{PID: os.Getpid(), Start: st, PidNS: 1}) {
		t.Error("a process in another PID namespace than recorded counts as alive")
	}
	ns, err := pidNS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A confined command is never in topo's own PID namespace: a record
	// that says so is forged, and signalling "its" namespace would reach
	// every process of topo's.
	if alive(&Record{PID: os.Getpid(), Start: st, PidNS: ns}) {
		t.Error("a record naming topo's own PID namespace counts as alive")
	}
}
