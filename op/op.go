// Package op holds what a plan is made of: typed operations, one struct
// per kernel verb, each rendering the shell command it is equivalent to,
// and the steps that carry them with their inverse. It does no I/O: the
// planner makes steps, the applier runs them on a machine (package
// machine), which dispatches on the operation's type, and the journal
// stores them as JSON (wire.go: nothing outside this package knows that
// shape). A new operation is one type here, in the file of its kind, with
// its command and wire form; then a case of machine's dispatch.
package op

import (
	"errors"
	"fmt"
	"strings"

	"github.com/topolab/topo/firewall"
)

// Operation is one kernel change. Only this package's types are
// operations.
type Operation interface {
	// Name is the operation's name in plans and journals: "netns-add".
	Name() string
	// Command is the command a person would type to do the same.
	Command() string
	fill(w *wire)
}

// ErrNotRun is the error of an operation of a batch that was not run
// because another operation of the batch failed: the step is not done,
// and the other's error is the one to report.
var ErrNotRun = errors.New("not run")

// Action is what a step does to its object. Like Terraform's, each action
// is a rune that is its own glyph.
type Action rune

// Actions.
const (
	Create  Action = '+'
	Change  Action = '~'
	Destroy Action = '-'
)

// MarshalText renders the action as its glyph, so that JSON plans read
// "+", "~" and "-".
func (a Action) MarshalText() ([]byte, error) { return []byte(string(a)), nil }

// UnmarshalText reads a glyph back.
func (a *Action) UnmarshalText(b []byte) error {
	switch string(b) {
	case "+", "~", "-":
		*a = Action([]rune(string(b))[0])
		return nil
	}
	return fmt.Errorf("unknown action %q", b)
}

// Inverse is the action of a step's undo.
func (a Action) Inverse() Action {
	switch a {
	case Create:
		return Destroy
	case Destroy:
		return Create
	}
	return Change
}

// Step is one kernel change of a plan, with what undoes it captured at
// plan time. It is plain data: the applier needs nothing else to run it or
// to undo it, and a journal can store it.
type Step struct {
	Action Action
	// Ref names the file's object the step serves.
	Ref Ref
	Op  Operation
	// Undo is the step that reverses this one; nil when nothing can.
	Undo *Step
	// Needs are what the step needs besides what its operation names (see
	// Needs): a route's address, a command's files. Plan-time only: not
	// in plans' JSON nor in journals.
	Needs []Key
}

// Command is the step's operation as a command.
func (s Step) Command() string { return s.Op.Command() }

// String is the step's line in a human plan: glyph, command, resource. A
// firewall batch shows one line per change, each with its own glyph, so
// that a plan reads like the iptables commands it runs.
func (s Step) String() string {
	if fb, ok := s.Op.(FirewallBatch); ok {
		var b strings.Builder
		for i, line := range fb.Lines() {
			if i > 0 {
				b.WriteString("\n  ")
			}
			fmt.Fprintf(&b, "%c %s  # %s", line.Glyph, line.Command, s.Ref)
		}
		return b.String()
	}
	return fmt.Sprintf("%c %s  # %s", s.Action, s.Command(), s.Ref)
}

// Headline is the step in one line, for messages: its command, or for a
// firewall batch, which may hold thousands of rules, what it feeds to
// iptables-restore.
func (s Step) Headline() string { return Headline(s.Op) }

// Headline is Step.Headline for an operation.
func Headline(o Operation) string {
	if fb, ok := o.(FirewallBatch); ok {
		return fmt.Sprintf("%s-restore --noflush: %d changes to table %s", fb.Family.Program(), len(fb.Changes), fb.Table)
	}
	return o.Command()
}

// RefKind is the kind of object a step serves.
type RefKind uint8

// Ref kinds, with the word that names them.
const (
	RefHost RefKind = iota
	RefContainer
	RefNetwork
	RefEndpoint
	RefDNS
	RefFirewall
	RefRollback
	RefRecovery
	RefLink
)

var refWords = [...]string{"host", "container", "network", "endpoint", "dns", "firewall", "rollback", "recovery", "link"}

// Ref names the object of the file a step serves: "container web",
// "network front", "endpoint web/front", "host".
type Ref struct {
	Kind RefKind
	Name string
}

// Refs of steps.
var (
	Host          = Ref{Kind: RefHost}
	Resolver      = Ref{Kind: RefDNS, Name: "resolver"}
	RollbackCheck = Ref{Kind: RefRollback, Name: "check"}
	Recovery      = Ref{Kind: RefRecovery}
)

// Container is the Ref of a container.
func Container(name string) Ref { return Ref{RefContainer, name} }

// Network is the Ref of a network.
func Network(name string) Ref { return Ref{RefNetwork, name} }

// Endpoint is the Ref of an endpoint, CONTAINER/NETWORK.
func Endpoint(name string) Ref { return Ref{RefEndpoint, name} }

// Link is the Ref of a point-to-point link, by its mark's name.
func Link(name string) Ref { return Ref{RefLink, name} }

// Firewall is the Ref of the changes of a table of family f: "firewall
// nat" (IPv4's), "firewall ipv6 nat".
func Firewall(f firewall.Family, table string) Ref {
	if f == firewall.IPv6 {
		return Ref{RefFirewall, f.String() + " " + table}
	}
	return Ref{RefFirewall, table}
}

func (r Ref) String() string {
	if r.Name == "" {
		return refWords[r.Kind]
	}
	return refWords[r.Kind] + " " + r.Name
}

// ParseRef reads a Ref as String writes it.
func ParseRef(s string) (Ref, error) {
	word, name, _ := strings.Cut(s, " ")
	for k, w := range refWords {
		if w == word {
			return Ref{RefKind(k), name}, nil
		}
	}
	return Ref{}, fmt.Errorf("unknown resource %q", s)
}
