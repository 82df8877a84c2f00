package sandbox

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Host is a long-lived sandbox for end-to-end tests: fresh network, mount and
// PID namespaces set up as Main's, in which commands run through nsenter.
type Host struct {
	pid     int
	nsenter string
}

// New starts a sandbox and ends it when t ends: its init is killed, and with
// it, by the PID namespace, every process started inside. New skips t, with
// a one-line reason, without root or without the tools it needs.
func New(t testing.TB) *Host {
	t.Helper()
	return newHost(t, "")
}

// newHost is New whose init runs the shell prelude before the setup.
func newHost(t testing.TB, prelude string) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(needsRoot)
	}
	tools := map[string]string{}
	for _, name := range []string{"nsenter", "sh", "mount", "ip", "sleep"} {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("needs %s (util-linux, iproute2): kernel tests run in a private namespace", name)
		}
		tools[name] = path
	}

	var stderr bytes.Buffer
	cmd := exec.Command(tools["sh"], "-c", prelude+setupScript())
	cmd.Stderr = &stderr
	// Pdeathsig (see sysProcAttr) ends the sandbox should the test binary
	// die before t.Cleanup runs, as on a test timeout. It fires when the
	// forking thread ends, and Go ends a thread only when a goroutine exits
	// locked to it, which the callers of New do not do.
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sandbox: start: %v", err)
	}
	t.Cleanup(func() {
		// SIGKILL: the init of a PID namespace ignores signals it has no
		// handler for, and its death kills everything else inside.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Wait() // the script has exited; this completes stderr
		t.Fatalf("sandbox: setup failed: %s", strings.TrimSpace(stderr.String()))
	}
	return &Host{pid: cmd.Process.Pid, nsenter: tools["nsenter"]}
}

// PID is the sandbox's init as seen from the caller's PID namespace.
func (h *Host) PID() int { return h.pid }

// Command returns a command that runs name with args inside the sandbox's
// network, mount and PID namespaces, in the caller's current directory. It
// keeps the caller's environment unless Env is set; Stdin, Stdout and Stderr
// may be set as for any exec.Cmd.
//
// Equivalent to: `nsenter --target PID --net --mount --pid --wd=$PWD -- NAME ARGS...`
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	nsArgs := []string{"--target", strconv.Itoa(h.pid), "--net", "--mount", "--pid"}
	// Entering a mount namespace resets the working directory to its root.
	if wd, err := os.Getwd(); err == nil {
		nsArgs = append(nsArgs, "--wd="+wd)
	}
	nsArgs = append(nsArgs, "--", name)
	return exec.Command(h.nsenter, append(nsArgs, args...)...)
}

// Run runs name with args inside the sandbox and returns its standard
// output; it fails t, showing standard output and error, if the command
// fails.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := h.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sandbox: %s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
