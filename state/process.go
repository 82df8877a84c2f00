package state

import "github.com/topolab/topo/privilege"

// Process is a container's command as topo finds it: the record of its pid
// file, and whether that process still runs. A process that died keeps its
// record, so that drift (a dead command) shows in a plan.
type Process struct {
	// Container is the file's container the command belongs to.
	Container string `json:"container"`
	// NS is the named namespace it was started in; "" is topo's own.
	NS   string   `json:"netns,omitempty"`
	Argv []string `json:"argv"`
	PID  int      `json:"pid"`
	// Running is false once the process has exited (or its pid was reused
	// by another process).
	Running bool   `json:"running"`
	PidFile string `json:"pid_file"`
	Log     string `json:"log"`
	// Privileges are the user and capabilities it was started with.
	Privileges privilege.Settings `json:"privileges,omitzero"`
	// Env and Dir are the environment (beyond PATH, HOME and TERM) and
	// working folder it was started with.
	Env []string `json:"env,omitempty"`
	Dir string   `json:"dir,omitempty"`
	// UTS is the UTS namespace it runs in ("" the host's).
	UTS string `json:"uts,omitempty"`
	// Health is its healthcheck's, as the resolver process runs it; nil
	// without one. It is shown, never planned on.
	Health *Health `json:"health,omitempty"`
	// Unconfined marks a process that an earlier topo started with all of
	// its own privileges, in the host's PID namespace: up restarts it
	// confined.
	Unconfined bool `json:"unconfined,omitempty"`
	// Exit is the status it ended with, when topo saw it end (a one-shot
	// that finished within its start window, a command topo stop ended);
	// nil while it runs or when it died unseen.
	Exit *int `json:"exit,omitempty"`
	// Stopped says topo stop ended it: up starts it again.
	Stopped bool `json:"stopped,omitempty"`
}

// Finished says the command is a one-shot that did its work: it ended
// with status 0 within its start window, as up saw. It is not drift.
func (p *Process) Finished() bool { return p.Exit != nil && *p.Exit == 0 && !p.Stopped }

// Process returns the process of container, or nil.
func (s *Snapshot) Process(container string) *Process {
	for i := range s.Processes {
		if s.Processes[i].Container == container {
			return &s.Processes[i]
		}
	}
	return nil
}

// Health is a command's healthcheck: starting, healthy or unhealthy (as
// Docker says), the failures in a row, and how the last run ended.
type Health struct {
	Status        string `json:"status"`
	FailingStreak int    `json:"failing_streak,omitempty"`
	LastExitCode  int    `json:"last_exit_code,omitempty"`
	LastOutput    string `json:"last_output,omitempty"`
}
