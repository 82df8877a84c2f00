// Package rundir locates topo's runtime files: journal, lock, logs and the
// resolver's records live under ROOT/<project>/, where ROOT is
// $TOPO_STATE_DIR or /run/topo. /run is a tmpfs: like the kernel objects
// they describe, these files do not survive a reboot.
package rundir

import (
	"os"
	"path/filepath"
)

// DefaultRoot is used when TOPO_STATE_DIR is unset.
const DefaultRoot = "/run/topo"

// Root is the folder that holds every project's runtime folder.
func Root() string {
	if r := os.Getenv("TOPO_STATE_DIR"); r != "" {
		return r
	}
	return DefaultRoot
}

// Project is the runtime folder of one project.
func Project(project string) string {
	return filepath.Join(Root(), project)
}

// SysctlRecord is the file that records the value a host sysctl had before
// topo first changed it, shared by every project: KEY.before in the root
// (a project name holds no dot, so it never collides with a project's
// folder). It is root's, mode 0600.
func SysctlRecord(key string) string {
	return filepath.Join(Root(), key+".before")
}
