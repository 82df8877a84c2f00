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

// HostPorts is what the planner needs to pick free host ports for
// publishes without a host port.
type HostPorts struct {
	// EphemeralLow and EphemeralHigh are net.ipv4.ip_local_port_range.
	EphemeralLow  int `json:"ephemeral_low"`
	EphemeralHigh int `json:"ephemeral_high"`
	// TCP and UDP are the ports bound on the host (listening TCP sockets,
	// bound UDP sockets), sorted.
	TCP []int `json:"tcp,omitempty"`
	UDP []int `json:"udp,omitempty"`
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
