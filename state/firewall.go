package state

// Firewall is what topo observes of the iptables rules: every chain whose
// name starts with "TOPO-" in full, and of the built-in chains only the
// rules that jump into a TOPO- chain or carry a topo comment, with their
// position. Rules of other programs are never part of it.
type Firewall struct {
	// Backend is "nft" or "legacy": the iptables flavour the host's rules
	// live in, and the one topo uses.
	Backend string    `json:"backend,omitempty"`
	Tables  []FwTable `json:"tables,omitempty"`
}

// FwTable is one iptables table ("filter", "nat").
type FwTable struct {
	Name   string    `json:"name"`
	Chains []FwChain `json:"chains,omitempty"`
}

// FwChain is one chain and its rules in order.
type FwChain struct {
	Name string `json:"name"`
	// Builtin chains (FORWARD, PREROUTING…) hold rules of others too: only
	// topo's are listed, each with its 1-based position in the chain.
	Builtin bool     `json:"builtin,omitempty"`
	Rules   []FwRule `json:"rules,omitempty"`
}

// FwRule is one rule, as `iptables-save` prints it after "-A CHAIN ".
type FwRule struct {
	// Pos is the rule's 1-based position in a built-in chain; 0 in topo's
	// own chains, where the list order is the position.
	Pos  int    `json:"pos,omitempty"`
	Spec string `json:"spec"`
}

// HostPorts is what the planner needs of the host's ports: to pick free
// ones for publishes without a host port, and to refuse a host port that
// a program holds.
type HostPorts struct {
	// EphemeralLow and EphemeralHigh are net.ipv4.ip_local_port_range.
	EphemeralLow  int `json:"ephemeral_low"`
	EphemeralHigh int `json:"ephemeral_high"`
	// Reserved is net.ipv4.ip_local_reserved_ports: ports the kernel
	// never picks for a socket, nor topo for a publish.
	Reserved []PortRange `json:"reserved,omitempty"`
	// Sockets are the host's listening TCP sockets and bound UDP and
	// SCTP sockets, sorted by protocol, port and address.
	Sockets []Socket `json:"sockets,omitempty"`
	// SCTP is what the kernel has of what an SCTP publish needs; nil
	// when it was not read (a snapshot made by hand, or by a fake that
	// models all of it).
	SCTP *SCTPSupport `json:"sctp,omitempty"`
}

// SCTPSupport is what an SCTP publish needs of the kernel besides what
// tcp and udp publishes need.
type SCTPSupport struct {
	// Conntrack says connection tracking, and so NAT, knows SCTP
	// (CONFIG_NF_CT_PROTO_SCTP, part of nf_conntrack): without it DNAT
	// would rewrite no port.
	Conntrack bool `json:"conntrack"`
	// Match says iptables has its sctp match (-m sctp --dport: xt_sctp,
	// CONFIG_NETFILTER_XT_MATCH_SCTP).
	Match bool `json:"match"`
}

// PortRange is the ports Low to High, both included.
type PortRange struct {
	Low  int `json:"low"`
	High int `json:"high"`
}

// Socket is a listening TCP or bound UDP or SCTP socket of the host's
// namespace.
type Socket struct {
	// Proto is "tcp", "udp" or "sctp".
	Proto string `json:"proto"`
	// Addr is the local address, IPv4 or IPv6; 0.0.0.0 or :: for every
	// address of its family.
	Addr string `json:"addr"`
	Port int    `json:"port"`
	// V6Only says an IPv6 socket takes no IPv4 (IPV6_V6ONLY): one on ::
	// without it holds the port on every IPv4 address too.
	V6Only bool `json:"v6only,omitempty"`
	// PID and Command name the process that holds the socket; 0 and ""
	// when topo cannot see it (a process of another PID namespace).
	PID     int    `json:"pid,omitempty"`
	Command string `json:"command,omitempty"`
}

// Table returns the named table, or nil.
func (f *Firewall) Table(name string) *FwTable {
	if f == nil {
		return nil
	}
	for i := range f.Tables {
		if f.Tables[i].Name == name {
			return &f.Tables[i]
		}
	}
	return nil
}

// Chain returns the named chain, or nil.
func (t *FwTable) Chain(name string) *FwChain {
	if t == nil {
		return nil
	}
	for i := range t.Chains {
		if t.Chains[i].Name == name {
			return &t.Chains[i]
		}
	}
	return nil
}
