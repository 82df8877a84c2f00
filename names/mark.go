package names

import "strings"

// Ownership marks name the project and the resource an object belongs to:
// "topo:PROJECT:KIND:NAME". Project, network and container names cannot
// hold a colon, so the mark parses back without ambiguity. They live in the
// link alias of bridges and veths, the alias of lo in a container's
// namespace, and the comment of iptables rules.
const markPrefix = "topo:"

// Kind is what a mark says an object is.
type Kind string

// Mark kinds.
const (
	KindNamespace Kind = "ns"  // the lo of a container's namespace
	KindNetwork   Kind = "net" // a network's bridge
	KindEndpoint  Kind = "ep"  // both ends of a veth; NAME is CONTAINER/NETWORK
	// Firewall rule comments: the jumps into a project's chains, and the
	// rules of one publish (NAME is CONTAINER/HOSTIP:HOSTPORT:PORT/PROTO,
	// HOSTPORT empty when topo picked it).
	KindProject Kind = "project"
	KindPort    Kind = "port"
)

// Word is the kind as messages say it: "container", "network", "endpoint".
func (k Kind) Word() string {
	switch k {
	case KindNamespace:
		return "container"
	case KindNetwork:
		return "network"
	case KindEndpoint:
		return "endpoint"
	}
	return string(k)
}

// Mark is a parsed ownership mark. The zero Mark is no mark.
type Mark struct {
	Project string
	Kind    Kind
	Name    string
}

// NewMark is the mark of project's object of kind called name.
func NewMark(project string, kind Kind, name string) Mark {
	return Mark{Project: project, Kind: kind, Name: name}
}

// IsZero reports whether m is no mark.
func (m Mark) IsZero() bool { return m == Mark{} }

// String formats the mark as stored in the kernel; "" for no mark.
func (m Mark) String() string {
	if m.IsZero() {
		return ""
	}
	return markPrefix + m.Project + ":" + string(m.Kind) + ":" + m.Name
}

// ParseMark reads an ownership mark; ok is false for anything topo did not
// write.
func ParseMark(s string) (m Mark, ok bool) {
	rest, found := strings.CutPrefix(s, markPrefix)
	if !found {
		return Mark{}, false
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Mark{}, false
	}
	return Mark{Project: parts[0], Kind: Kind(parts[1]), Name: parts[2]}, true
}

// Owns reports whether s is a mark of project, of kind when kind is not
// "".
func Owns(s, project string, kind Kind) bool {
	m, ok := ParseMark(s)
	return ok && m.Project == project && (kind == "" || m.Kind == kind)
}

// KindLink marks both ends of a point-to-point link: NAME is
// "CONTAINER/IFNAME CONTAINER/IFNAME", its two ends in file order (no
// container name or interface name holds a blank).
const KindLink Kind = "link"

// Link is the name of the mark of a link between interface ifA of
// container a and ifB of b.
func Link(a, ifA, b, ifB string) string { return a + "/" + ifA + " " + b + "/" + ifB }
