// Package health runs containers' healthchecks as Docker does, inside the
// project's resolver process (the one process of topo's that lives as long
// as the project), and keeps what they give in a file of the project's
// runtime folder (records.HealthFile): ps and inspect show it, and up
// waits on it for depends_on's service_healthy.
package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/resolver/records"
)

// Statuses, as Docker names them.
const (
	Starting  = "starting"
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// Status is one container's health.
type Status struct {
	Status        string `json:"status"`
	FailingStreak int    `json:"failing_streak"`
	// PID is the command's process the checks are of: a command started
	// again starts again at Starting.
	PID int      `json:"pid"`
	Log []Result `json:"log,omitempty"`
}

// Result is one run of a healthcheck.
type Result struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

// Docker's limits (moby daemon/health.go): the results kept, and the
// output kept of each.
const (
	maxLog    = 5
	maxOutput = 4096
)

// Last is the last result, or nil.
func (s *Status) Last() *Result {
	if len(s.Log) == 0 {
		return nil
	}
	return &s.Log[len(s.Log)-1]
}

// Read reads a health file: the status of each container with a
// healthcheck. A missing file is an empty map.
func Read(path string) (map[string]*Status, error) {
	// Never through a link: topo runs as root (see package safedir).
	b, err := records.RuntimeTree(path).ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*Status{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]*Status{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// write replaces a health file atomically; root's alone, since it
// holds the checks' output.
func write(path string, st map[string]*Status) error { return records.WriteJSON(path, st, 0o600) }

// Await waits until the health file says that container's command, the
// process of pidFile, is healthy; at most timeout. It fails at once when
// that command does not run or is unhealthy, as Compose fails an up whose
// dependency is.
func Await(file, container, pidFile string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rec, alive, err := daemon.Read(records.RuntimeTree(file), pidFile)
		if err != nil {
			return err
		}
		if !alive {
			return fmt.Errorf("container %q is not healthy: its command does not run (topo logs %s)", container, container)
		}
		all, err := Read(file)
		if err != nil {
			return fmt.Errorf("read the health of container %q: %w", container, err)
		}
		st := all[container]
		status := Starting
		if st != nil && st.PID == rec.PID {
			status = st.Status
			if status == Healthy {
				return nil
			}
			if status == Unhealthy {
				return fmt.Errorf("container %q is unhealthy: its healthcheck failed %d times in a row%s", container, st.FailingStreak, st.lastOutput())
			}
		}
		if time.Now().After(deadline) {
			last := ""
			if st != nil {
				last = st.lastOutput()
			}
			return fmt.Errorf("container %q did not become healthy within %v (health: %s)%s", container, timeout, status, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastOutput says how the last run ended, for messages.
func (s *Status) lastOutput() string {
	r := s.Last()
	if r == nil {
		return "; its healthcheck has not run yet"
	}
	out := strings.TrimSpace(r.Output)
	if out == "" {
		return fmt.Sprintf("; the last run exited with status %d and printed nothing", r.ExitCode)
	}
	return fmt.Sprintf("; the last run exited with status %d: %s", r.ExitCode, out)
}
