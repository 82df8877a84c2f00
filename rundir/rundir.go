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

// HostLockName is the lock, in the root, that one process at a time holds
// while it changes a project: what projects share (the shared iptables
// chains and their jumps, ip_forward and its record) and what one project
// must not pick while another does (subnets, random host ports) is
// observed, planned and changed under it. Like SysctlRecord it holds a
// dot, so no project's folder has its name.
const HostLockName = "host.lock"

// SysctlRecord is the file that records the value a host sysctl had before
// topo first changed it, shared by every project: KEY.before in the root
// (a project name holds no dot, so it never collides with a project's
// folder). It is root's, mode 0600.
func SysctlRecord(key string) string {
	return filepath.Join(Root(), key+".before")
}
