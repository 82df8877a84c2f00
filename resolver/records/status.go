package records

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/topolab/topo/safedir"
)

// Files of a project's resolver, in the project's runtime folder.
const (
	// DocumentFile holds the records document the resolver serves.
	DocumentFile = "dns.json"
	// StatusFile is where the resolver says what it loaded.
	StatusFile = "dns.status"
	// PidFile and LogFile are the resolver process's (see package daemon).
	PidFile = "resolver.pid"
	LogFile = "resolver.log"
	// HealthFile is where the resolver says how each healthcheck goes
	// (package health).
	HealthFile = "health.json"
)

// Status is what a running resolver reports after each load, so that
// observing it needs no query: the hash of the document it serves and the
// namespaces it listens in.
type Status struct {
	PID int `json:"pid"`
	// Generation counts loads; a reload is done when it has grown.
	Generation int `json:"generation"`
	// Hash is the Hash of the document served ("" before one loaded).
	Hash string `json:"hash"`
	// Namespaces are those the resolver listens in, each with the identity
	// of the namespace its sockets are in: a namespace deleted and made
	// again under the same name has another.
	Namespaces map[string]NamespaceID `json:"namespaces"`
	// Errors are the problems of the last load: a namespace it could not
	// listen in, a document it could not read.
	Errors []string `json:"errors,omitempty"`
}

// NamespaceID is a network namespace's device and inode numbers, as stat
// gives them for /run/netns/NAME.
type NamespaceID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// ReadStatus reads a status file; a missing one is (nil, nil).
func ReadStatus(path string) (*Status, error) {
	b, err := RuntimeTree(path).ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WriteStatus replaces a status file atomically, so that a reader never
// sees half of one.
func WriteStatus(path string, s *Status) error { return WriteJSON(path, s, 0o600) }

// WriteJSON replaces the file at path with v as indented JSON,
// atomically: a temporary file beside it, renamed over it.
func WriteJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	return RuntimeTree(path).WriteAtomic(tmp, path, append(b, '\n'), perm)
}

// RuntimeTree is the runtime root that holds the project folder of a
// resolver's file: it is reached without following links.
func RuntimeTree(path string) safedir.Tree {
	return safedir.Runtime(filepath.Dir(filepath.Dir(filepath.Clean(path))))
}
