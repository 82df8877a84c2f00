package op

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/privilege"
)

// wire is the JSON shape of a step, in plans (`topo plan --json`) and in
// journals: one flat object whose "op" names the operation and whose
// other fields are present only when they apply. Each operation fills it
// (its fill method) and is made from it (the decode it registers by name,
// beside its type); nothing outside this package knows these fields.
// Their order and names are documented (README.md) and must not change.
type wire struct {
	// Command is set in plans only, on top-level steps.
	Command  string `json:"command,omitempty"`
	Action   Action `json:"action"`
	Op       string `json:"op"`
	Resource string `json:"resource"`
	NS       string `json:"netns,omitempty"`
	Link     string `json:"link,omitempty"`
	Alias    string `json:"alias,omitempty"`
	Master   string `json:"master,omitempty"`
	Peer     string `json:"peer,omitempty"`
	PeerNS   string `json:"peer_netns,omitempty"`
	// Parent and Mode are a macvlan's.
	Parent  string   `json:"parent,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	MTU     int      `json:"mtu,omitempty"`
	Addr    string   `json:"addr,omitempty"`
	Dst     string   `json:"dst,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	Key     string   `json:"key,omitempty"`
	Value   string   `json:"value,omitempty"`
	Argv    []string `json:"argv,omitempty"`
	Log     string   `json:"log,omitempty"`
	PidFile string   `json:"pid_file,omitempty"`
	PID     int      `json:"pid,omitempty"`
	// Privileges are a proc-start's user and capabilities.
	Privileges privilege.Settings `json:"privileges,omitzero"`
	// Env and Dir are a proc-start's environment and working folder.
	Env []string `json:"env,omitempty"`
	Dir string   `json:"dir,omitempty"`
	// Await and Health are a proc-start's waits for health.
	Await   []Await `json:"await,omitempty"`
	Health  string  `json:"health,omitempty"`
	DropLog bool    `json:"drop_log,omitempty"`
	Keep    bool    `json:"keep,omitempty"`
	// Family is a firewall batch's, left out for IPv4.
	Family firewall.Family `json:"family,omitempty"`
	Table  string          `json:"table,omitempty"`
	// Rules are a firewall batch's changes.
	Rules   []firewall.Change `json:"rules,omitempty"`
	Project string            `json:"project,omitempty"`
	Path    string            `json:"path,omitempty"`
	Content string            `json:"content,omitempty"`
	// A UTS namespace's names (uts.go); UTS is a proc-start's.
	Hostname   string `json:"hostname,omitempty"`
	Domainname string `json:"domainname,omitempty"`
	UTS        string `json:"uts,omitempty"`
	// Metric and Proto are a route's; LinkMAC is a veth-add's first
	// end's hardware address; Qdisc is a qdisc-set's impairment.
	Metric  int         `json:"metric,omitempty"`
	Proto   uint8       `json:"proto,omitempty"`
	LinkMAC string      `json:"link_mac,omitempty"`
	Qdisc   *Impairment `json:"qdisc,omitempty"`
	Steps   []wire      `json:"steps,omitempty"`
	Undo    *wire       `json:"undo,omitempty"`
	// A VXLAN device's identifier, source address and port, and a
	// forwarding entry's remote host (vxlan.go).
	VNI    int    `json:"vni,omitempty"`
	Local  string `json:"local,omitempty"`
	Port   int    `json:"port,omitempty"`
	Remote string `json:"remote,omitempty"`
	// Network and Container name a CNI attachment (cni.go).
	Network   string `json:"network,omitempty"`
	Container string `json:"container,omitempty"`
	// IPs are the addresses a cni-add asks of its chain.
	IPs []string `json:"ips,omitempty"`
	// Hosts are a hosts-write's lines of CNI attachments' addresses.
	Hosts []CNIHostsLine `json:"hosts,omitempty"`
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

// wireBuffers hold AppendJSON's encodings between calls: a journal writes
// tens of thousands of steps in a run (a down at N=5000, 15,000 in one
// batch), and a buffer of its own for each was most of the garbage that
// set the run's peak memory.
var wireBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// AppendJSON appends the step's wire form, as MarshalJSON writes it, to b.
func (s *Step) AppendJSON(b []byte) ([]byte, error) {
	buf := wireBuffers.Get().(*bytes.Buffer)
	defer wireBuffers.Put(buf)
	buf.Reset()
	// Encode is Marshal with a newline after: the same escaping.
	if err := json.NewEncoder(buf).Encode(toWire(s)); err != nil {
		return b, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

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

func route(w *wire) (netip.Prefix, netip.Addr, error) {
	dst, err := ParseDst(w.Dst)
	if err != nil {
		return dst, netip.Addr{}, err
	}
	gw, err := parseGateway(w.Gateway)
	return dst, gw, err
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
