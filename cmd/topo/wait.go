package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/topolab/topo/health"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// waitReady is up --wait: it observes the project until every container's
// command is ready (see ready), failing at once when one has ended, or
// after timeout (0: none).
func (g *globals) waitReady(c context.Context, k machine.Machine, f *spec.File, timeout time.Duration) error {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		obs, err := k.Observe(c, f.Project)
		if err != nil {
			return err
		}
		var waiting []string
		for _, sc := range f.Containers {
			if len(sc.Command) == 0 {
				continue
			}
			ok, err := ready(sc, obs.Process(sc.Name))
			if err != nil {
				return fmt.Errorf("up --wait: container %s: %w", sc.Name, err)
			}
			if !ok {
				waiting = append(waiting, sc.Name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-c.Done():
			return c.Err()
		case <-deadline:
			return fmt.Errorf("up --wait: not ready after %s: %s", timeout, strings.Join(waiting, ", "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready says whether a container's command is ready: it runs (and its
// healthcheck, if it has one, passes), or it is a one-shot that finished;
// an error when it ended otherwise or its healthcheck failed, as Compose's
// up --wait fails on an unhealthy container.
func ready(sc *spec.Container, pr *state.Process) (ok bool, err error) {
	switch {
	case pr == nil:
		return false, fmt.Errorf("its command was not started")
	case pr.Finished():
		return true, nil
	case !pr.Running:
		if pr.Exit != nil {
			return false, fmt.Errorf("its command exited (%d)", *pr.Exit)
		}
		return false, fmt.Errorf("its command exited: see topo logs %s", sc.Name)
	case pr.Health == nil:
		return true, nil
	case pr.Health.Status == health.Unhealthy:
		return false, fmt.Errorf("its healthcheck fails: %s", strings.TrimSpace(pr.Health.LastOutput))
	}
	return pr.Health.Status == health.Healthy, nil
}
