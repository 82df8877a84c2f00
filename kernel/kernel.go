// Package kernel is topo's seam with the machine: it observes the live state
// of a project and performs planned steps. The real implementation talks
// netlink; Fake keeps everything in memory for fast tests.
package kernel

import (
	"context"
	"errors"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/rundir"
	"github.com/topolab/topo/state"
)

// Kernel observes and changes the machine.
type Kernel interface {
	// Observe returns the host namespace, the names of all named namespaces,
	// and the full content of the namespaces marked for project.
	Observe(ctx context.Context, project string) (*state.Snapshot, error)
	// Apply performs one step. Deleting something already gone succeeds;
	// creating something that exists fails with an error for which
	// IsExist is true.
	Apply(ctx context.Context, s planner.Step) error
}

// observedSysctls are the host sysctls a Snapshot carries, with their
// records from before topo first changed them.
var observedSysctls = []string{planner.IPForward}

// isSysctlRecord reports whether a file step's path is the record of one
// of them (rundir.SysctlRecord): the one kind of file outside /etc/netns
// that file steps write.
func isSysctlRecord(ns, p string) bool {
	if ns != "" {
		return false
	}
	for _, k := range observedSysctls {
		if p == rundir.SysctlRecord(k) {
			return true
		}
	}
	return false
}

// ErrNotExist and ErrExist classify kernel outcomes; test them with
// errors.Is or the predicates below, never by message.
var (
	ErrNotExist = errors.New("does not exist")
	ErrExist    = errors.New("already exists")
)

// IsNotFound reports whether err says an object is missing.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotExist) }

// IsExist reports whether err says an object is already there.
func IsExist(err error) bool { return errors.Is(err, ErrExist) }
