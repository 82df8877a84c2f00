package state

// Resolver is a project's DNS resolver as observed: its process, the
// records document on disk, and what the running process says it serves.
type Resolver struct {
	// PID is the process its pid file names; 0 without a pid file.
	PID int `json:"pid,omitempty"`
	// Alive is true when that process runs (same pid, same start time).
	Alive bool `json:"alive,omitempty"`
	// Records is the records document on disk; "" when there is none.
	Records string `json:"records,omitempty"`
	// Loaded is the hash of the document the running resolver serves.
	Loaded string `json:"loaded,omitempty"`
	// Listening are the namespaces where the resolver has sockets in the
	// namespace that holds that name now, sorted. A namespace deleted and
	// made again is missing until the resolver listens in the new one.
	Listening []string `json:"listening,omitempty"`
	// Errors are the problems the resolver reported for its last load.
	Errors []string `json:"errors,omitempty"`
}
