package op

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/privilege"
)

// wire is the JSON shape of a step, in plans (`topo plan --json`) and in
// journals: one flat object whose "op" names the operation and whose
// other fields are present only when they apply. It is the only code that
// knows these fields; their order and names are documented (README.md)
// and must not change.
type wire struct {
	// Command is set in plans only, on top-level steps.
	Command  string   `json:"command,omitempty"`
	Action   Action   `json:"action"`
	Op       string   `json:"op"`
	Resource string   `json:"resource"`
	NS       string   `json:"netns,omitempty"`
	Link     string   `json:"link,omitempty"`
	Alias    string   `json:"alias,omitempty"`
	Master   string   `json:"master,omitempty"`
	Peer     string   `json:"peer,omitempty"`
	PeerNS   string   `json:"peer_netns,omitempty"`
	MAC      string   `json:"mac,omitempty"`
	MTU      int      `json:"mtu,omitempty"`
	Addr     string   `json:"addr,omitempty"`
	Dst      string   `json:"dst,omitempty"`
	Gateway  string   `json:"gateway,omitempty"`
	Key      string   `json:"key,omitempty"`
	Value    string   `json:"value,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	Log      string   `json:"log,omitempty"`
	PidFile  string   `json:"pid_file,omitempty"`
	PID      int      `json:"pid,omitempty"`
	// Privileges are a proc-start's user and capabilities.
	Privileges privilege.Settings `json:"privileges,omitzero"`
	DropLog    bool               `json:"drop_log,omitempty"`
	Table      string             `json:"table,omitempty"`
	// Rules are a firewall batch's changes.
	Rules   []firewall.Change `json:"rules,omitempty"`
	Project string            `json:"project,omitempty"`
	Path    string            `json:"path,omitempty"`
	Content string            `json:"content,omitempty"`
	Steps   []wire            `json:"steps,omitempty"`
	Undo    *wire             `json:"undo,omitempty"`
}

// registry makes each operation from its wire form, by name.
var registry = map[string]func(w *wire) (Operation, error){}

func register(name string, decode func(w *wire) (Operation, error)) {
	if registry[name] != nil {
		panic("op: " + name + " registered twice")
	}
	registry[name] = decode
}

func toWire(s *Step) wire {
	w := wire{Action: s.Action, Op: s.Op.Name(), Resource: s.Ref.String()}
	s.Op.fill(&w)
	if s.Undo != nil {
		u := toWire(s.Undo)
		w.Undo = &u
	}
	return w
}

func fromWire(w *wire) (Step, error) {
	decode := registry[w.Op]
	if decode == nil {
		return Step{}, fmt.Errorf("unknown op %q", w.Op)
	}
	o, err := decode(w)
	if err != nil {
		return Step{}, fmt.Errorf("op %s: %w", w.Op, err)
	}
	ref, err := ParseRef(w.Resource)
	if err != nil {
		return Step{}, err
	}
	s := Step{Action: w.Action, Ref: ref, Op: o}
	if w.Undo != nil {
		u, err := fromWire(w.Undo)
		if err != nil {
			return Step{}, fmt.Errorf("undo: %w", err)
		}
		s.Undo = &u
	}
	return s, nil
}

// MarshalJSON writes the step's wire form.
func (s Step) MarshalJSON() ([]byte, error) { return json.Marshal(toWire(&s)) }

// UnmarshalJSON reads a step as MarshalJSON writes it.
func (s *Step) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	st, err := fromWire(&w)
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// Listed is a step as a JSON plan lists it: with its command first.
type Listed struct{ Step }

// MarshalJSON writes the step's wire form with its command.
func (l Listed) MarshalJSON() ([]byte, error) {
	w := toWire(&l.Step)
	w.Command = l.Command()
	return json.Marshal(w)
}

func parseMark(s string) (names.Mark, error) {
	if s == "" {
		return names.Mark{}, nil
	}
	m, ok := names.ParseMark(s)
	if !ok {
		return names.Mark{}, fmt.Errorf("alias %q is not a mark of topo's", s)
	}
	return m, nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	return net.ParseMAC(s)
}

func macString(m net.HardwareAddr) string {
	if len(m) == 0 {
		return ""
	}
	return m.String()
}

func parseGateway(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	return netip.ParseAddr(s)
}

func gatewayString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func init() {
	register("netns-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		return NetnsAdd{NS: w.NS, Mark: m}, err
	})
	register("netns-del", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		return NetnsDel{NS: w.NS, Mark: m}, err
	})
	register("bridge-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		if err != nil {
			return nil, err
		}
		mac, err := parseMAC(w.MAC)
		return BridgeAdd{NS: w.NS, Link: w.Link, MAC: mac, MTU: w.MTU, Mark: m}, err
	})
	register("veth-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		if err != nil {
			return nil, err
		}
		mac, err := parseMAC(w.MAC)
		return VethAdd{NS: w.NS, Link: w.Link, Master: w.Master, Peer: w.Peer, PeerNS: w.PeerNS, MAC: mac, MTU: w.MTU, Mark: m}, err
	})
	register("link-del", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		return LinkDel{NS: w.NS, Link: w.Link, Mark: m}, err
	})
	register("link-mac", func(w *wire) (Operation, error) {
		mac, err := parseMAC(w.MAC)
		return LinkSetMAC{NS: w.NS, Link: w.Link, MAC: mac}, err
	})
	register("link-mtu", func(w *wire) (Operation, error) {
		return LinkSetMTU{NS: w.NS, Link: w.Link, MTU: w.MTU}, nil
	})
	register("hairpin", func(w *wire) (Operation, error) {
		if w.Value != "on" && w.Value != "off" {
			return nil, fmt.Errorf("hairpin %q: want on or off", w.Value)
		}
		return Hairpin{NS: w.NS, Link: w.Link, On: w.Value == "on"}, nil
	})
	register("link-up", func(w *wire) (Operation, error) { return LinkUp{NS: w.NS, Link: w.Link}, nil })
	register("link-down", func(w *wire) (Operation, error) { return LinkDown{NS: w.NS, Link: w.Link}, nil })
	register("addr-add", func(w *wire) (Operation, error) {
		a, err := netip.ParsePrefix(w.Addr)
		return AddrAdd{NS: w.NS, Link: w.Link, Addr: a}, err
	})
	register("addr-del", func(w *wire) (Operation, error) {
		a, err := netip.ParsePrefix(w.Addr)
		return AddrDel{NS: w.NS, Link: w.Link, Addr: a}, err
	})
	register("route-add", func(w *wire) (Operation, error) {
		dst, gw, err := route(w)
		return RouteAdd{NS: w.NS, Link: w.Link, Dst: dst, Gateway: gw}, err
	})
	register("route-del", func(w *wire) (Operation, error) {
		dst, gw, err := route(w)
		return RouteDel{NS: w.NS, Link: w.Link, Dst: dst, Gateway: gw}, err
	})
	register("sysctl", func(w *wire) (Operation, error) { return Sysctl{NS: w.NS, Key: w.Key, Value: w.Value}, nil })
	register("firewall", func(w *wire) (Operation, error) { return FirewallBatch{Table: w.Table, Changes: w.Rules}, nil })
	register("file-write", func(w *wire) (Operation, error) {
		return FileWrite{NS: w.NS, Path: w.Path, Content: w.Content}, nil
	})
	register("file-del", func(w *wire) (Operation, error) { return FileDel{NS: w.NS, Path: w.Path}, nil })
	register("dns-records", func(w *wire) (Operation, error) {
		return RecordsWrite{Project: w.Project, Content: w.Content}, nil
	})
	register("dns-records-del", func(w *wire) (Operation, error) { return RecordsDel{Project: w.Project}, nil })
	register("resolver-start", func(w *wire) (Operation, error) { return ResolverStart{Project: w.Project}, nil })
	register("resolver-stop", func(w *wire) (Operation, error) { return ResolverStop{Project: w.Project}, nil })
	register("resolver-reload", func(w *wire) (Operation, error) { return ResolverReload{Project: w.Project}, nil })
	register("proc-start", func(w *wire) (Operation, error) {
		return ProcStart{NS: w.NS, Argv: w.Argv, Privileges: w.Privileges, Log: w.Log, PidFile: w.PidFile}, nil
	})
	register("proc-stop", func(w *wire) (Operation, error) {
		return ProcStop{NS: w.NS, Argv: w.Argv, Log: w.Log, PidFile: w.PidFile, PID: w.PID, DropLog: w.DropLog}, nil
	})
	register("seq", func(w *wire) (Operation, error) {
		s := Seq{Steps: make([]Step, len(w.Steps))}
		for i := range w.Steps {
			part, err := fromWire(&w.Steps[i])
			if err != nil {
				return nil, fmt.Errorf("part %d: %w", i+1, err)
			}
			s.Steps[i] = part
		}
		return s, nil
	})
}

func route(w *wire) (netip.Prefix, netip.Addr, error) {
	dst, err := ParseDst(w.Dst)
	if err != nil {
		return dst, netip.Addr{}, err
	}
	gw, err := parseGateway(w.Gateway)
	return dst, gw, err
}

func (o NetnsAdd) fill(w *wire) { w.NS, w.Alias = o.NS, o.Mark.String() }
func (o NetnsDel) fill(w *wire) { w.NS, w.Alias = o.NS, o.Mark.String() }
func (o BridgeAdd) fill(w *wire) {
	w.NS, w.Link, w.MAC, w.MTU, w.Alias = o.NS, o.Link, macString(o.MAC), o.MTU, o.Mark.String()
}
func (o VethAdd) fill(w *wire) {
	w.NS, w.Link, w.Alias, w.Master, w.Peer, w.PeerNS = o.NS, o.Link, o.Mark.String(), o.Master, o.Peer, o.PeerNS
	w.MAC, w.MTU = macString(o.MAC), o.MTU
}
func (o LinkDel) fill(w *wire)    { w.NS, w.Link, w.Alias = o.NS, o.Link, o.Mark.String() }
func (o LinkSetMAC) fill(w *wire) { w.NS, w.Link, w.MAC = o.NS, o.Link, macString(o.MAC) }
func (o LinkSetMTU) fill(w *wire) { w.NS, w.Link, w.MTU = o.NS, o.Link, o.MTU }
func (o Hairpin) fill(w *wire)    { w.NS, w.Link, w.Value = o.NS, o.Link, onOff(o.On) }
func (o LinkUp) fill(w *wire)     { w.NS, w.Link = o.NS, o.Link }
func (o LinkDown) fill(w *wire)   { w.NS, w.Link = o.NS, o.Link }
func (o AddrAdd) fill(w *wire)    { w.NS, w.Link, w.Addr = o.NS, o.Link, o.Addr.String() }
func (o AddrDel) fill(w *wire)    { w.NS, w.Link, w.Addr = o.NS, o.Link, o.Addr.String() }
func (o RouteAdd) fill(w *wire) {
	w.NS, w.Link, w.Dst, w.Gateway = o.NS, o.Link, DstString(o.Dst), gatewayString(o.Gateway)
}
func (o RouteDel) fill(w *wire) {
	w.NS, w.Link, w.Dst, w.Gateway = o.NS, o.Link, DstString(o.Dst), gatewayString(o.Gateway)
}
func (o Sysctl) fill(w *wire)         { w.NS, w.Key, w.Value = o.NS, o.Key, o.Value }
func (o FirewallBatch) fill(w *wire)  { w.Table, w.Rules = o.Table, o.Changes }
func (o FileWrite) fill(w *wire)      { w.NS, w.Path, w.Content = o.NS, o.Path, o.Content }
func (o FileDel) fill(w *wire)        { w.NS, w.Path = o.NS, o.Path }
func (o RecordsWrite) fill(w *wire)   { w.Project, w.Content = o.Project, o.Content }
func (o RecordsDel) fill(w *wire)     { w.Project = o.Project }
func (o ResolverStart) fill(w *wire)  { w.Project = o.Project }
func (o ResolverStop) fill(w *wire)   { w.Project = o.Project }
func (o ResolverReload) fill(w *wire) { w.Project = o.Project }
func (o ProcStart) fill(w *wire) {
	w.NS, w.Argv, w.Privileges, w.Log, w.PidFile = o.NS, o.Argv, o.Privileges, o.Log, o.PidFile
}
func (o ProcStop) fill(w *wire) {
	w.NS, w.Argv, w.Log, w.PidFile, w.PID, w.DropLog = o.NS, o.Argv, o.Log, o.PidFile, o.PID, o.DropLog
}
func (o Seq) fill(w *wire) {
	w.Steps = make([]wire, len(o.Steps))
	for i := range o.Steps {
		w.Steps[i] = toWire(&o.Steps[i])
	}
}

// OrderKey is the step's fields in the order plans break ties between
// steps of one kind by: resource, namespace, link, address, destination,
// sysctl key, operation, table.
func OrderKey(s *Step) string {
	var w wire
	s.Op.fill(&w)
	return s.Ref.String() + "\x00" + w.NS + "\x00" + w.Link + "\x00" + w.Addr + "\x00" + w.Dst + "\x00" + w.Key + "\x00" + s.Op.Name() + "\x00" + w.Table
}

// Registered lists the names of every operation, sorted: what a plan or a
// journal may hold.
func Registered() []string {
	out := make([]string, 0, len(registry))
	for name := range registry {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
