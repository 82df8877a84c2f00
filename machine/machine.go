// Package machine is topo's seam with the machine it runs on: it observes
// the live state of a project and performs operations (package op). A
// Machine is composed of small mechanisms, each behind an interface of its
// own with a real implementation and a fake: Links (netlink: namespaces,
// links, addresses, routes, qdiscs), Firewall (iptables), Sysctls, Files
// (/etc/netns, the records of sysctls topo set) and Processes (container
// commands, the resolver). Apply dispatches on the operation's type, once,
// here; the real composition is package machine/linux's, the in-memory
// one package machine/fake's, and both run the same code above the
// mechanisms. Nothing here knows plans, the applier or the DNS server.
package machine

import (
	"context"
	"errors"
	"fmt"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Machine observes and changes the machine. Batch, ApplyBatch and
// Settle are part of it so that every caller, the applier above all,
// runs one loop whatever the machine is: one that batches nothing
// answers 1.
type Machine interface {
	// Observe returns the host namespace, the names of all named
	// namespaces, and the full content of the namespaces marked for
	// project, with the project's firewall rules, files, resolver and
	// commands; for project "", the host and the names alone.
	Observe(ctx context.Context, project string) (*state.Snapshot, error)
	// Apply performs one operation. Deleting something already gone
	// succeeds; creating something that exists fails with an error for
	// which IsExist is true.
	Apply(ctx context.Context, o op.Operation) error
	// Batch says how many of ops, from the first, it can perform together;
	// 1 means the first runs alone through Apply. It only groups
	// operations that do not depend on each other, so that the reverse
	// of their order is still a valid order to undo them in.
	Batch(ops []op.Operation) int
	// ApplyBatch performs ops, a run Batch accepted, and returns one error
	// per operation: nil for one that is done, the reason for one that is
	// not (and has changed nothing).
	ApplyBatch(ctx context.Context, ops []op.Operation) []error
	// Settle waits for work the kernel finishes in the background after
	// operations (a deleted namespace's veths): a finished run means a
	// finished kernel.
	Settle(ctx context.Context)
	// FirewallBackend names the firewall backend ("nft", "legacy"), or
	// fails with ErrNoFirewall.
	FirewallBackend(ctx context.Context) (string, error)
}

// ErrNotExist and ErrExist classify outcomes; test them with errors.Is or
// the predicates below, never by message.
var (
	ErrNotExist = errors.New("does not exist")
	ErrExist    = errors.New("already exists")
)

// IsNotFound reports whether err says an object is missing.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotExist) }

// IsExist reports whether err says an object is already there.
func IsExist(err error) bool { return errors.Is(err, ErrExist) }

// ErrNoFirewall says the firewall's programs are missing.
var ErrNoFirewall = errors.New("the iptables programs are not installed: topo needs them for port publishing, NAT and isolation; install the Debian package iptables (apt-get install iptables)")

// Links is the netlink mechanism: named namespaces, links, addresses and
// routes. Deletions come in runs (NetnsDel, LinkDel), which it may perform
// together: errs gets one error per operation.
type Links interface {
	// Observe fills snap's Host and Namespaces as Machine.Observe says,
	// and calls own, from any goroutine, for each namespace of project.
	Observe(ctx context.Context, project string, snap *state.Snapshot, own func(ns string) error) error
	// Sockets lists the host's listening TCP and bound UDP sockets, with
	// their owners where it can see them.
	Sockets() ([]state.Socket, error)
	NetnsAdd(o op.NetnsAdd) error
	// NetnsDel deletes namespaces, then the bridges of bridges (which
	// may be empty) once every namespace went.
	NetnsDel(ns []op.NetnsDel, bridges []op.LinkDel, errs []error)
	BridgeAdd(o op.BridgeAdd) error
	VethAdd(o op.VethAdd) error
	// MacvlanAdd makes a macvlan of a host link in a namespace.
	MacvlanAdd(o op.MacvlanAdd) error
	// LinkDel deletes links of one namespace.
	LinkDel(links []op.LinkDel, errs []error)
	LinkSetMAC(o op.LinkSetMAC) error
	LinkSetMTU(o op.LinkSetMTU) error
	Hairpin(o op.Hairpin) error
	LinkSetUp(ns, link string, up bool) error
	AddrAdd(o op.AddrAdd) error
	AddrDel(o op.AddrDel) error
	RouteAdd(o op.RouteAdd) error
	RouteDel(o op.RouteDel) error
	// VxlanAdd makes an overlay's VXLAN device; Fdb and Neigh add (or,
	// add false, delete) its static forwarding and neighbour entries.
	VxlanAdd(o op.VxlanAdd) error
	Fdb(o op.FdbAdd, add bool) error
	Neigh(o op.NeighAdd, add bool) error
	// QdiscSet and QdiscDel set and remove a link's root qdisc (its
	// impairment).
	QdiscSet(o op.QdiscSet) error
	QdiscDel(o op.QdiscDel) error
	// Netem says whether the kernel has the netem qdisc.
	Netem() bool
	Settle(ctx context.Context)
}

// Firewall is the firewall mechanism of one address family, behind which
// iptables is one backend: it reads topo's tables and applies a batch of
// changes to one of them, all or nothing. A machine has one of each
// family (Mechanisms.Firewall, Firewall6), the kernel's tables of the two
// being apart.
type Firewall interface {
	// Backend names the backend, or fails with ErrNoFirewall.
	Backend(ctx context.Context) (string, error)
	// Observe reads the tables topo writes; nil without a backend.
	Observe(ctx context.Context) (*state.Firewall, error)
	Apply(ctx context.Context, o op.FirewallBatch) error
	// SCTP says what the kernel has of what an SCTP publish needs; nil
	// when it cannot tell (a fake that models all of it).
	SCTP() *state.SCTPSupport
}

// Sysctls reads and writes sysctls.
type Sysctls interface {
	// Set writes key in namespace ns ("" the host). An IPv6 key of a
	// kernel without IPv6 has nothing to set: it succeeds.
	Set(ns, key, value string) error
	// Get reads a key of the host: ok is false when there is none (an
	// interface's key once the interface is gone).
	Get(key string) (value string, ok bool, err error)
	// GetIn reads keys in the named namespace ns; a key it does not
	// have is left out.
	GetIn(ns string, keys []string) (map[string]string, error)
	// Fresh reads keys as a namespace has them when it is made.
	Fresh(keys []string) (map[string]string, error)
}

// Files writes and reads the files of /etc/netns/NS/ that topo writes,
// and the records of host sysctls from before topo changed them.
type Files interface {
	Write(o op.FileWrite) error
	Remove(o op.FileDel) error
	// ReadNetns reads the files of a namespace, by path; missing ones are
	// left out.
	ReadNetns(ns string) (map[string]string, error)
	// ReadRecord reads the record of a host sysctl; ok is false when
	// there is none.
	ReadRecord(key string) (value string, ok bool, err error)
	// ReadNetnsSysctls reads the record of the sysctls topo set in
	// project's namespace ns (names.Runtime.NetnsSysctls); "" when there
	// is none.
	ReadNetnsSysctls(project, ns string) (string, error)
	// Nameservers are the IPv4 nameservers of the host's resolv.conf.
	Nameservers() []string
	// MachineID is the host's machine ID, "" when it has none.
	MachineID() string
}

// Processes runs container commands and the projects' resolvers.
type Processes interface {
	Start(o op.ProcStart) error
	// StartBatch starts a run of commands, errs getting one error per
	// command: their start windows (package daemon) run at the same time.
	StartBatch(ss []op.ProcStart, errs []error)
	Stop(o op.ProcStop) error
	// Observe reads the pid files of project's commands.
	Observe(project string) ([]state.Process, error)
	RecordsWrite(o op.RecordsWrite) error
	RecordsDel(project string) error
	ResolverStart(project string) error
	// ResolverStop asks the resolver to stop and returns the wait for its
	// end: a batch deletes namespaces meanwhile.
	ResolverStop(project string) (wait func() error, err error)
	ResolverReload(project string) error
	// ObserveResolver reads project's resolver, checking what it listens
	// in against the namespaces that exist now; nil when it has none.
	ObserveResolver(project string) (*state.Resolver, error)
}

// CNI runs CNI plugin chains (package machine/cni): an ADD or DEL of a
// container's attachment, and the project's attachments as the cache
// of their ADDs records them, each with its chain's CHECK.
type CNI interface {
	// Add runs the chain's ADD; one that fails has changed nothing (its
	// DEL undid what it did) and says the plugin's message and code.
	Add(ctx context.Context, o op.CNIAdd) error
	// Del runs its DEL; an attachment that is gone is success.
	Del(ctx context.Context, o op.CNIDel) error
	// Observe reads project's attachments.
	Observe(ctx context.Context, project string) ([]state.CNIAttachment, error)
	// Addrs are the addresses (CIDR) of the interface of an attachment
	// that its cached result gives; none when it has no result.
	Addrs(l op.CNIHostsLine) []string
}

// Mechanisms is a Machine made of its mechanisms.
type Mechanisms struct {
	Links Links
	// Firewall is IPv4's (iptables), Firewall6 IPv6's (ip6tables).
	Firewall  Firewall
	Firewall6 Firewall
	Sysctls   Sysctls
	Files     Files
	Processes Processes
	CNI       CNI
	UTS       UTSNamespaces
}

var _ Machine = (*Mechanisms)(nil)

// Apply performs one operation, as its type says.
func (m *Mechanisms) Apply(ctx context.Context, o op.Operation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !whileTearingDown(o) {
		m.Links.Settle(ctx)
	}
	return m.apply(ctx, o)
}

// apply is the one dispatch on the operation's type.
func (m *Mechanisms) apply(ctx context.Context, o op.Operation) error {
	switch o := o.(type) {
	case op.Seq:
		for _, part := range o.Steps {
			if err := m.Apply(ctx, part.Op); err != nil {
				return fmt.Errorf("%s: %w", part.Command(), err)
			}
		}
		return nil
	case op.NetnsAdd:
		return m.Links.NetnsAdd(o)
	case op.NetnsDel:
		errs := make([]error, 1)
		m.Links.NetnsDel([]op.NetnsDel{o}, nil, errs)
		return errs[0]
	case op.BridgeAdd:
		return m.Links.BridgeAdd(o)
	case op.VethAdd:
		return m.Links.VethAdd(o)
	case op.MacvlanAdd:
		return m.Links.MacvlanAdd(o)
	case op.LinkDel:
		errs := make([]error, 1)
		m.Links.LinkDel([]op.LinkDel{o}, errs)
		return errs[0]
	case op.LinkSetMAC:
		return m.Links.LinkSetMAC(o)
	case op.LinkSetMTU:
		return m.Links.LinkSetMTU(o)
	case op.Hairpin:
		return m.Links.Hairpin(o)
	case op.LinkUp:
		return m.Links.LinkSetUp(o.NS, o.Link, true)
	case op.LinkDown:
		return m.Links.LinkSetUp(o.NS, o.Link, false)
	case op.AddrAdd:
		return m.Links.AddrAdd(o)
	case op.AddrDel:
		return m.Links.AddrDel(o)
	case op.RouteAdd:
		return m.Links.RouteAdd(o)
	case op.RouteDel:
		return m.Links.RouteDel(o)
	case op.VxlanAdd:
		return m.Links.VxlanAdd(o)
	case op.FdbAdd:
		return m.Links.Fdb(o, true)
	case op.FdbDel:
		return m.Links.Fdb(op.FdbAdd(o), false)
	case op.NeighAdd:
		return m.Links.Neigh(o, true)
	case op.NeighDel:
		return m.Links.Neigh(op.NeighAdd(o), false)
	case op.QdiscSet:
		return m.Links.QdiscSet(o)
	case op.QdiscDel:
		return m.Links.QdiscDel(o)
	case op.Sysctl:
		return m.Sysctls.Set(o.NS, o.Key, o.Value)
	case op.SysctlReset:
		fresh, err := m.Sysctls.Fresh([]string{o.Key})
		if err != nil {
			return err
		}
		v, ok := fresh[o.Key]
		if !ok {
			return nil // a key new namespaces lack: nothing to put back
		}
		return m.Sysctls.Set(o.NS, o.Key, v)
	case op.FirewallBatch:
		return m.firewallOf(o.Family).Apply(ctx, o)
	case op.FileWrite:
		return m.Files.Write(o)
	case op.FileDel:
		return m.Files.Remove(o)
	case op.RecordsWrite:
		return m.Processes.RecordsWrite(o)
	case op.RecordsDel:
		return m.Processes.RecordsDel(o.Project)
	case op.ResolverStart:
		return m.Processes.ResolverStart(o.Project)
	case op.ResolverStop:
		wait, err := m.Processes.ResolverStop(o.Project)
		if err != nil {
			return err
		}
		return wait()
	case op.ResolverReload:
		return m.Processes.ResolverReload(o.Project)
	case op.CNIAdd:
		return m.CNI.Add(ctx, o)
	case op.CNIDel:
		return m.CNI.Del(ctx, o)
	case op.HostsWrite:
		return m.Files.Write(op.FileWrite{NS: o.NS, Path: o.Path, Content: o.Filled(m.CNI.Addrs)})
	case op.ProcStart:
		return m.Processes.Start(o)
	case op.ProcStop:
		return m.Processes.Stop(o)
	case op.UTSAdd:
		return m.UTS.Add(o.Path, o.Hostname, o.Domainname)
	case op.UTSSet:
		return m.UTS.Set(o.Path, o.Hostname, o.Domainname)
	case op.UTSDel:
		return m.UTS.Del(o.Path)
	}
	return fmt.Errorf("operation %s (%T): no mechanism performs it", o.Name(), o)
}

// firewallOf is the firewall of family f.
func (m *Mechanisms) firewallOf(f firewall.Family) Firewall {
	if f == firewall.IPv6 {
		return m.Firewall6
	}
	return m.Firewall
}

// whileTearingDown says whether o may run while the kernel still removes
// deleted namespaces' veths: it deletes, and creates nothing a dying link
// could be in the way of.
func whileTearingDown(o op.Operation) bool {
	switch o.(type) {
	case op.NetnsDel, op.LinkDel, op.CNIDel, op.FdbDel, op.NeighDel, op.FileDel, op.FirewallBatch, op.ProcStop, op.RecordsDel, op.ResolverStop, op.ResolverReload, op.UTSDel:
		return true
	}
	return false
}

// Settle waits for the links' background work.
func (m *Mechanisms) Settle(ctx context.Context) { m.Links.Settle(ctx) }

// FirewallBackend names the firewall's backend.
func (m *Mechanisms) FirewallBackend(ctx context.Context) (string, error) {
	return m.Firewall.Backend(ctx)
}
