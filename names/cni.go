package names

import "path"

// CNIPath is where topo looks for CNI plugins, in order, unless the
// variable CNIPathEnv gives another list (colon-separated, as CNI
// runtimes read it): the CNI project's folder, and Debian's
// (containernetworking-plugins).
var CNIPath = []string{"/opt/cni/bin", "/usr/lib/cni"}

// CNIPathEnv is the variable that overrides CNIPath.
const CNIPathEnv = "CNI_PATH"

// CNI is the folder of a project's CNI attachments: libcni's cache (the
// config and the result of each ADD, under results/), and the leases of
// host-local chains that do not name a dataDir (CNIIPAM). It lives in the
// project's runtime folder, not /var/lib/cni, so that it goes with the
// project; the last DEL of the project removes it.
func (r Runtime) CNI(project string) string { return CNIIn(r.Project(project)) }

// CNIIn is the CNI folder of the project whose runtime folder is dir.
func CNIIn(dir string) string { return path.Join(dir, "cni") }

// CNIIPAM is host-local's dataDir for a project's chains.
func (r Runtime) CNIIPAM(project string) string { return path.Join(r.CNI(project), "ipam") }

// CNIResult is where libcni caches the result of an ADD of network (the
// chain's name) for container id on interface ifname, in cache dir.
func CNIResult(dir, network, id, ifname string) string {
	return path.Join(dir, "results", network+"-"+id+"-"+ifname)
}

// IsPluginType says whether s can be a CNI plugin's type as topo runs
// them: a program's name in the plugin path (letters, digits, '.', '_'
// and '-', starting with a letter or digit), never a path.
func IsPluginType(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
