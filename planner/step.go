package planner

import (
	"fmt"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/privilege"
)

// Action is what a step does to its object. Like Terraform's, each action is
// a rune that is its own glyph.
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

// Op is the kernel verb of a step. Each has exactly one inverse.
type Op string

// Ops. The comment gives the equivalent shell command.
const (
	// sysctl -w KEY=VALUE
	OpSysctl Op = "sysctl"
	// ip netns add NS; ip -n NS link set lo up alias MARK
	OpNetnsAdd Op = "netns-add"
	// ip netns del NS; refused when ALIAS is set and lo's mark differs
	OpNetnsDel Op = "netns-del"
	// ip link add LINK address MAC type bridge; ip link set LINK alias MARK up
	OpBridgeAdd Op = "bridge-add"
	// ip link add LINK master MASTER type veth peer name PEER address MAC
	// netns PEERNS; both ends get ALIAS and are set up, LINK in hairpin
	// mode (as a port of MASTER)
	OpVethAdd Op = "veth-add"
	// ip [-n NS] link del LINK; refused when ALIAS is set and the link's
	// mark differs, so that nothing changed since the plan is deleted
	OpLinkDel Op = "link-del"
	// the Steps, in order, as one step: only ever an undo, that rebuilds
	// in one go what one deletion removed (a veth with its addresses and
	// routes)
	OpSeq Op = "seq"
	// ip [-n NS] link set LINK address MAC: a bridge's, put back
	OpLinkMAC Op = "link-mac"
	// ip [-n NS] link set LINK type bridge_slave hairpin VALUE (on, off)
	OpHairpin Op = "hairpin"
	// ip [-n NS] link set LINK up
	OpLinkUp Op = "link-up"
	// ip [-n NS] link set LINK down
	OpLinkDown Op = "link-down"
	// ip [-n NS] addr add ADDR dev LINK
	OpAddrAdd Op = "addr-add"
	// ip [-n NS] addr del ADDR dev LINK
	OpAddrDel Op = "addr-del"
	// ip [-n NS] route add DST via GATEWAY [dev LINK]
	OpRouteAdd Op = "route-add"
	// ip [-n NS] route del DST via GATEWAY [dev LINK]
	OpRouteDel Op = "route-del"

	// Container commands (see process.go).
	// [ip netns exec NS] ARGV... >>LOG 2>&1 &, its pid recorded in PIDFILE
	OpProcStart Op = "proc-start"
	// kill -TERM -PGID, then -KILL after a grace period; rm PIDFILE
	OpProcStop Op = "proc-stop"
	// iptables-restore --noflush, with Rules as the lines of TABLE: all of
	// them or none
	OpFirewall Op = "firewall"
)

// Ops of the embedded DNS (see dns.go).
const (
	// cat > PATH, with CONTENT: a file of /etc/netns/NS/
	OpFileWrite Op = "file-write"
	// rm -f PATH
	OpFileDel Op = "file-del"
	// topo resolver load -p PROJECT: write the records document (CONTENT)
	// and make a running resolver serve it
	OpRecordsWrite Op = "dns-records"
	// topo resolver unload -p PROJECT: remove the records document
	OpRecordsDel Op = "dns-records-del"
	// topo resolver start -p PROJECT
	OpResolverStart Op = "resolver-start"
	// topo resolver stop -p PROJECT
	OpResolverStop Op = "resolver-stop"
	// topo resolver reload -p PROJECT
	OpResolverReload Op = "resolver-reload"
)

// Step is one kernel change, with what undoes it captured at plan time. It
// is plain data: the applier needs nothing else to run it or to undo it, and
// a journal can store it as JSON.
type Step struct {
	Action Action `json:"action"`
	Op     Op     `json:"op"`
	// Resource names the file's object the step serves: "network front",
	// "container web", "endpoint web/front".
	Resource string `json:"resource"`
	// NS is the named namespace the step runs in; "" is the host.
	NS    string `json:"netns,omitempty"`
	Link  string `json:"link,omitempty"`
	Alias string `json:"alias,omitempty"`
	// Master is the bridge a veth's host end is enslaved to.
	Master string `json:"master,omitempty"`
	// Peer and PeerNS are a veth's other end and the namespace it goes to.
	Peer   string `json:"peer,omitempty"`
	PeerNS string `json:"peer_netns,omitempty"`
	// MAC is the hardware address of a veth's peer, or of a bridge. Like
	// Docker, topo derives a container's from its address, so that
	// neighbours' ARP caches stay right when an endpoint is rebuilt. A
	// bridge gets its gateway's: left to choose, the kernel gives a bridge
	// the lowest of its ports' addresses, and the gateway's would change
	// under the containers' ARP caches whenever a container came or went.
	MAC string `json:"mac,omitempty"`
	// Addr is an address in CIDR form.
	Addr string `json:"addr,omitempty"`
	// Dst and Gateway are a route's.
	Dst     string `json:"dst,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	// Key and Value are a sysctl's.
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	// Argv, Log and PidFile are a container command's: what runs, where its
	// output goes and where its pid is recorded. PID is the observed process
	// a proc-stop ends, for display only: the kernel reads the pid file.
	Argv    []string `json:"argv,omitempty"`
	Log     string   `json:"log,omitempty"`
	PidFile string   `json:"pid_file,omitempty"`
	PID     int      `json:"pid,omitempty"`
	// Privileges are a proc-start's user and capabilities.
	Privileges privilege.Settings `json:"privileges,omitzero"`
	// DropLog makes a proc-stop remove the log too: the container is gone.
	DropLog bool `json:"drop_log,omitempty"`
	// Table and Rules are a firewall step's: iptables changes applied in
	// one batch.
	Table string            `json:"table,omitempty"`
	Rules []firewall.Change `json:"rules,omitempty"`
	// Project is the project whose resolver a DNS step acts on.
	Project string `json:"project,omitempty"`
	// Path and Content are a file's; Content is also a records document.
	Path    string `json:"path,omitempty"`
	Content string `json:"content,omitempty"`
	// Steps are the parts of an OpSeq.
	Steps []Step `json:"steps,omitempty"`
	// Undo is the step that reverses this one.
	Undo *Step `json:"undo,omitempty"`
}

// Command renders the step as the command a person would type.
func (s Step) Command() string {
	ip := "ip "
	if s.NS != "" {
		ip = "ip -n " + s.NS + " "
	}
	switch s.Op {
	case OpSeq:
		parts := make([]string, len(s.Steps))
		for i, p := range s.Steps {
			parts[i] = p.Command()
		}
		return strings.Join(parts, "; ")
	case OpSysctl:
		return fmt.Sprintf("sysctl -w %s=%s", s.Key, s.Value)
	case OpFirewall:
		lines := make([]string, len(s.Rules))
		for i, c := range s.Rules {
			lines[i] = firewall.Command(s.Table, c)
		}
		return strings.Join(lines, "\n")
	case OpNetnsAdd:
		return "ip netns add " + s.NS
	case OpNetnsDel:
		return "ip netns del " + s.NS
	case OpBridgeAdd:
		mac := ""
		if s.MAC != "" {
			mac = " address " + s.MAC
		}
		return ip + "link add " + s.Link + mac + " type bridge"
	case OpVethAdd:
		mac := ""
		if s.MAC != "" {
			mac = " address " + s.MAC
		}
		return fmt.Sprintf("%slink add %s master %s type veth peer name %s%s netns %s", ip, s.Link, s.Master, s.Peer, mac, s.PeerNS)
	case OpLinkDel:
		return ip + "link del " + s.Link
	case OpLinkMAC:
		return ip + "link set " + s.Link + " address " + s.MAC
	case OpHairpin:
		return ip + "link set " + s.Link + " type bridge_slave hairpin " + s.Value
	case OpLinkUp:
		return ip + "link set " + s.Link + " up"
	case OpLinkDown:
		return ip + "link set " + s.Link + " down"
	case OpAddrAdd:
		return ip + "addr add " + s.Addr + " dev " + s.Link
	case OpAddrDel:
		return ip + "addr del " + s.Addr + " dev " + s.Link
	case OpRouteAdd, OpRouteDel:
		verb := "add"
		if s.Op == OpRouteDel {
			verb = "del"
		}
		var b strings.Builder
		b.WriteString(ip + "route " + verb + " " + s.Dst)
		if s.Gateway != "" {
			b.WriteString(" via " + s.Gateway)
		}
		if s.Link != "" {
			b.WriteString(" dev " + s.Link)
		}
		return b.String()
	case OpProcStart, OpProcStop:
		return procCommand(s)
	case OpFileWrite:
		return "cat > " + s.Path
	case OpFileDel:
		return "rm -f " + s.Path
	case OpRecordsWrite:
		return "topo resolver load -p " + s.Project
	case OpRecordsDel:
		return "topo resolver unload -p " + s.Project
	case OpResolverStart:
		return "topo resolver start -p " + s.Project
	case OpResolverStop:
		return "topo resolver stop -p " + s.Project
	case OpResolverReload:
		return "topo resolver reload -p " + s.Project
	}
	return string(s.Op)
}

// String is the step's line in a human plan: glyph, command, resource.
func (s Step) String() string {
	if s.Op == OpFirewall {
		return firewallLines(s)
	}
	return fmt.Sprintf("%c %s  # %s", s.Action, s.Command(), s.Resource)
}
