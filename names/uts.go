package names

import (
	"path"
	"strings"
)

// HostnameMax is the most bytes the kernel takes for a hostname or a
// domainname (sethostname(2), setdomainname(2)).
const HostnameMax = 64

// UTSDir is the folder of a project's UTS namespaces: for each of its
// network namespaces NS, the file NS, a bind mount of the UTS namespace
// its containers' processes run in (as ip netns keeps a network
// namespace in /run/netns/NS), holding the container's hostname.
func (r Runtime) UTSDir(project string) string { return path.Join(r.Project(project), "uts") }

// UTS is the bind mount of the UTS namespace that goes with network
// namespace ns, of project's.
func (r Runtime) UTS(project, ns string) string { return path.Join(r.UTSDir(project), ns) }

// IsUTS reports whether p is the UTS namespace of one of project's
// namespaces: a single, plain name in its folder.
func (r Runtime) IsUTS(project, p string) bool {
	dir, file := path.Split(p)
	return path.Clean(dir) == r.UTSDir(project) && file != "" && file != "." && file != ".." && !strings.ContainsAny(file, "/\x00")
}

// UTSName is the hostname a container's UTS namespace takes: hostname,
// cut to what the kernel holds. Docker's default is the container's
// short ID; topo's is its name (spec fills Hostname with it).
func UTSName(hostname string) string {
	if len(hostname) > HostnameMax {
		return hostname[:HostnameMax]
	}
	return hostname
}
