package machine

import "github.com/topolab/topo/state"

// UTSNamespaces keeps the containers' UTS namespaces, each a bind mount
// in the project's runtime folder (names.Runtime.UTS) holding its
// hostname and domainname, as Links keeps network namespaces.
type UTSNamespaces interface {
	// Add makes one: ErrExist when Path already holds a namespace.
	Add(path, hostname, domainname string) error
	// Set changes the names of the one at path.
	Set(path, hostname, domainname string) error
	// Del unmounts and removes one; a missing one is success.
	Del(path string) error
	// Observe reads project's, sorted by path.
	Observe(project string) ([]state.UTS, error)
}
