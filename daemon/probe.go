package daemon

import (
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// Probe runs s.Argv confined, as Start runs a container's command (its
// namespace, user, capabilities, environment and folder, in a PID
// namespace of its own), waits at most timeout for it to end, and returns
// its exit status and its output (stdout and stderr, the first max
// bytes): a healthcheck's run. One that outlives timeout is killed, with
// all it started, and its status is -1, as Docker reports it; so is one
// that cannot start, with why as its output, and one ctx ends.
func Probe(ctx context.Context, s Spec, timeout time.Duration, max int) (int, string) {
	if len(s.Argv) == 0 {
		return -1, "empty command"
	}
	conf, err := resolveConfinement(s)
	if err != nil {
		return -1, err.Error()
	}
	prog, err := lookPath(s.Argv[0])
	if err != nil {
		return -1, fmt.Sprintf("%q: %v", s.Argv[0], ErrNotFound)
	}
	out := &capped{max: max}
	cmd := exec.Command(prog, s.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = cleanEnv(conf.user.Home, s.Env)
	cmd.Dir = cmp.Or(s.Dir, "/")
	if err := startConfined(cmd, s, conf); err != nil {
		return -1, fmt.Sprintf("start %q: %v", s.Argv[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), string(out.b)
	case <-ctx.Done():
		// The first process of its PID namespace: the rest goes with it.
		_ = cmd.Process.Kill()
		<-done
		return -1, ctx.Err().Error()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return -1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	}
}

// capped keeps the first max bytes written to it.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
