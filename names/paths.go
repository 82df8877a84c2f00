package names

import (
	"fmt"
	"path"
	"strings"
)

// Where iproute2 keeps named namespaces, and the per-namespace files that
// `ip netns exec` puts over /etc: topo writes resolv.conf and hosts there.
const (
	NetnsDir    = "/run/netns"
	NetnsEtcDir = "/etc/netns"
)

// The files topo writes in a namespace's /etc/netns folder.
const (
	ResolvConf = "resolv.conf"
	Hosts      = "hosts"
)

// NetnsFiles are the files of NetnsEtcDir/NS that topo writes, in the
// order it reads them.
var NetnsFiles = []string{ResolvConf, Hosts}

// NetnsPath is /run/netns/NAME, refusing names that are not a single path
// element: a name like ".." must never reach an rmdir.
func NetnsPath(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("invalid namespace name %q", name)
	}
	return path.Join(NetnsDir, name), nil
}

// NetnsFile is the path of one of ns's files under /etc/netns.
func NetnsFile(ns, name string) string { return path.Join(NetnsEtcDir, ns, name) }

// NetnsOfFile is the namespace whose /etc/netns file p is.
func NetnsOfFile(p string) string { return path.Base(path.Dir(p)) }

// IsNetnsFile reports whether p is a file topo writes under /etc/netns/NS/.
func IsNetnsFile(ns, p string) bool {
	if ns == "" || path.Dir(p) != path.Join(NetnsEtcDir, ns) {
		return false
	}
	b := path.Base(p)
	return b == ResolvConf || b == Hosts
}

// DefaultRoot is the runtime root when TOPO_STATE_DIR does not say
// another. /run is a tmpfs: like the kernel objects they describe, these
// files do not survive a reboot.
const DefaultRoot = "/run/topo"

// RootEnv names the variable that overrides DefaultRoot.
const RootEnv = "TOPO_STATE_DIR"

// Runtime locates topo's runtime files under Root: per project, its
// journal, lock, container logs and the resolver's files, and the records
// of host sysctls from before topo changed them.
type Runtime struct {
	Root string
}

// DefaultRuntime is the runtime under DefaultRoot.
var DefaultRuntime = Runtime{Root: DefaultRoot}

// Project is the runtime folder of one project.
func (r Runtime) Project(project string) string { return path.Join(r.Root, project) }

// The files of a project's runtime folder that transactions keep: the
// journal of the one under way (package journal) and the lock (package
// lock).
const (
	JournalFile = "journal"
	LockFile    = "lock"
)

// The record of the last up that succeeded, in a project's runtime folder
// (package registry): the files it came from, and the project as they
// resolved, which the read-only commands use when -p names the project
// without its file.
const (
	SourceFile = "source.json"
	ConfigFile = "config.yaml"
)

// Containers is the folder of a project's container commands: for each,
// NAME.pid (see package daemon) and NAME.log, its stdout and stderr.
func (r Runtime) Containers(project string) string {
	return path.Join(r.Project(project), "containers")
}

// PidFile is the pid file of a container's command.
func (r Runtime) PidFile(project, container string) string {
	return path.Join(r.Containers(project), container+".pid")
}

// LogFile is the log of a container's command.
func (r Runtime) LogFile(project, container string) string {
	return path.Join(r.Containers(project), container+".log")
}

// ContainerOfPidFile is the container whose pid file p is.
func ContainerOfPidFile(p string) string { return strings.TrimSuffix(path.Base(p), ".pid") }

// Resolver is one of the files of a project's resolver: its records
// document, pid file, status and log (see package records for the names).
// It refuses project names that are not one path element.
func (r Runtime) Resolver(project, file string) (string, error) {
	if _, err := NetnsPath(project); err != nil {
		return "", fmt.Errorf("invalid project name %q", project)
	}
	return path.Join(r.Project(project), file), nil
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
func (r Runtime) SysctlRecord(key string) string { return path.Join(r.Root, key+".before") }

// IsSysctlRecord reports whether p is the record of one of keys.
func (r Runtime) IsSysctlRecord(p string, keys ...string) bool {
	for _, k := range keys {
		if p == r.SysctlRecord(k) {
			return true
		}
	}
	return false
}

// NetnsSysctls is the record of the sysctls topo set in namespace NS of
// project's, a key a line, so that a key the file drops is put back to a
// new namespace's value: NS.sysctls in the project's folder, which goes
// with it.
func (r Runtime) NetnsSysctls(project, ns string) string {
	return path.Join(r.Project(project), ns+".sysctls")
}

// IsNetnsSysctls reports whether p is the sysctl record of a namespace.
func (r Runtime) IsNetnsSysctls(p string) bool {
	dir, file := path.Split(p)
	return path.Dir(path.Clean(dir)) == path.Clean(r.Root) && strings.HasSuffix(file, ".sysctls") && file != ".sysctls"
}

// ExitFile is the record of how the command of pid file p ended, which
// the process that started it and waits for it (package daemon's shim)
// writes when it ends: NAME.exit beside NAME.pid.
func ExitFile(pidFile string) string { return strings.TrimSuffix(pidFile, ".pid") + ".exit" }

// LogTimes is the index of when each part of log was written (the
// shim notes it as it copies the output), which logs --timestamps reads:
// NAME.log.times beside NAME.log.
func LogTimes(log string) string { return log + ".times" }
