// Package records is the document the planner writes for a project's DNS
// resolver and the resolver loads: which namespaces it serves, which
// networks each one sees, and who answers to which name on each network.
// It is plain data with a stable encoding, so that the planner can tell
// from a hash whether the running resolver serves the records it wants.
package records

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/topolab/topo/privilege"
)

// Document is one project's records.
type Document struct {
	Project string `json:"project"`
	// Namespaces are those the resolver listens in, sorted by name.
	Namespaces []Namespace `json:"namespaces"`
	// Networks are sorted by name.
	Networks []Network `json:"networks"`
	// Health are the healthchecks the resolver process runs (package
	// health), sorted by container.
	Health []Check `json:"health,omitempty"`
	// Proxies are the publishes the resolver process forwards itself,
	// sorted by Key: those on [::1] (see Proxy).
	Proxies []Proxy `json:"proxies,omitempty"`
}

// Proxy is one publish on the host's IPv6 loopback, [::1]:PORT, which no
// DNAT rule can make (a packet from ::1 is never routed off lo, and IPv6
// has no route_localnet), so the resolver process listens there and
// forwards each connection (TCP) or each client's datagrams (UDP) to the
// container's IPv6 address, as Docker's userland proxy does.
type Proxy struct {
	// Key names the publish as its rules would (firewall.Publish.Key),
	// so that a host port topo picked is kept.
	Key       string         `json:"key"`
	Container string         `json:"container"`
	Proto     string         `json:"proto"`
	Listen    netip.AddrPort `json:"listen"`
	Target    netip.AddrPort `json:"target"`
}

// Check is one container's healthcheck, as Docker runs it: Test every
// Interval (StartInterval during StartPeriod while starting), each run cut
// at Timeout, Retries failures in a row unhealthy; run as the container's
// command runs (its namespace, user, capabilities, environment and
// folder) while the process of PidFile runs.
type Check struct {
	Container     string             `json:"container"`
	NS            string             `json:"netns,omitempty"`
	UTS           string             `json:"uts,omitempty"`
	PidFile       string             `json:"pid_file"`
	Test          []string           `json:"test"`
	Privileges    privilege.Settings `json:"privileges,omitzero"`
	Env           []string           `json:"env,omitempty"`
	Dir           string             `json:"dir,omitempty"`
	Interval      time.Duration      `json:"interval"`
	Timeout       time.Duration      `json:"timeout"`
	StartPeriod   time.Duration      `json:"start_period,omitempty"`
	StartInterval time.Duration      `json:"start_interval"`
	Retries       int                `json:"retries"`
}

// Namespace is one namespace the resolver answers in: an asker.
type Namespace struct {
	// Name is the named namespace under /run/netns.
	Name string `json:"name"`
	// Containers are the containers whose processes run there: its owner
	// and those with network_mode container:OWNER.
	Containers []string `json:"containers"`
	// Networks are the networks the namespace is attached to: the names
	// it may see.
	Networks []string `json:"networks,omitempty"`
	// Upstreams, when set, are where its other names are forwarded
	// (HOST:53 each: a container's dns:), instead of the host's
	// resolv.conf nameservers, as Docker's embedded DNS takes them.
	Upstreams []string `json:"upstreams,omitempty"`
}

// Network is one network and the names its members answer to.
type Network struct {
	Name string `json:"name"`
	// Internal networks reach nothing outside; an asker attached only to
	// internal networks gets no forwarding to upstream resolvers.
	Internal bool     `json:"internal,omitempty"`
	Members  []Member `json:"members,omitempty"`
}

// Member is one container's endpoint on a network.
type Member struct {
	Container string `json:"container"`
	// Addr is its IPv4 address; none on an IPv6-only network.
	Addr netip.Addr `json:"addr,omitzero"`
	// Addr6 is its IPv6 address, on a network with IPv6.
	Addr6 netip.Addr `json:"addr6,omitzero"`
	// Names are lower-case DNS names without the trailing dot: the
	// container's name, its hostname and its aliases on this network.
	Names []string `json:"names"`
	// CNI, on a CNI network, is the attachment whose cached result
	// holds the addresses (known only once its chain ran): the resolver
	// reads them from the project's CNI cache when it loads, and Addr
	// is then unset.
	CNI *CNIRef `json:"cni,omitempty"`
}

// CNIRef names a CNI attachment in the cache: the chain's network name,
// the container ID (the container's namespace) and the interface.
type CNIRef struct {
	Network string `json:"network"`
	ID      string `json:"id"`
	IfName  string `json:"ifname"`
}

// Encode renders d as indented JSON with a trailing newline. Equal
// documents give equal bytes: namespaces, networks and members are sorted.
func Encode(d *Document) []byte {
	c := *d
	c.Namespaces = append([]Namespace{}, d.Namespaces...)
	sort.Slice(c.Namespaces, func(i, j int) bool { return c.Namespaces[i].Name < c.Namespaces[j].Name })
	c.Health = append([]Check(nil), d.Health...)
	sort.Slice(c.Health, func(i, j int) bool { return c.Health[i].Container < c.Health[j].Container })
	c.Proxies = append([]Proxy(nil), d.Proxies...)
	sort.Slice(c.Proxies, func(i, j int) bool { return c.Proxies[i].Key < c.Proxies[j].Key })
	c.Networks = append([]Network{}, d.Networks...)
	sort.Slice(c.Networks, func(i, j int) bool { return c.Networks[i].Name < c.Networks[j].Name })
	for i := range c.Networks {
		ms := append([]Member(nil), c.Networks[i].Members...)
		sort.Slice(ms, func(a, b int) bool { return ms[a].Container < ms[b].Container })
		c.Networks[i].Members = ms
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(&c) // only strings, addresses and slices: cannot fail
	return b.Bytes()
}

// Decode parses a document and checks that it refers to no network it
// does not define.
func Decode(b []byte) (*Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("decode records: %w", err)
	}
	nets := map[string]bool{}
	for _, n := range d.Networks {
		nets[n.Name] = true
		for _, m := range n.Members {
			if m.CNI == nil && (m.Addr.IsValid() && !m.Addr.Is4() || !m.Addr.IsValid() && !m.Addr6.IsValid()) {
				return nil, fmt.Errorf("records: network %s: container %s has no IPv4 address, nor an IPv6 one", n.Name, m.Container)
			}
			if m.Addr6.IsValid() && !m.Addr6.Is6() {
				return nil, fmt.Errorf("records: network %s: container %s: addr6 %s is not IPv6", n.Name, m.Container, m.Addr6)
			}
		}
	}
	for _, px := range d.Proxies {
		if px.Proto != "tcp" && px.Proto != "udp" || !px.Listen.Addr().Is6() || !px.Target.Addr().IsValid() || px.Listen.Port() == 0 || px.Target.Port() == 0 {
			return nil, fmt.Errorf("records: proxy %s: want tcp or udp from an IPv6 address and port to an address and port, got %s %s to %s", px.Key, px.Proto, px.Listen, px.Target)
		}
	}
	for _, ns := range d.Namespaces {
		for _, n := range ns.Networks {
			if !nets[n] {
				return nil, fmt.Errorf("records: namespace %s is attached to network %s, which the document does not define", ns.Name, n)
			}
		}
	}
	return &d, nil
}

// Hash identifies an encoded document: the resolver reports the hash of
// what it loaded, the planner compares it with the hash of what it wants.
func Hash(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:])
}
