package firewall

import (
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Published is one publish as the kernel holds it.
type Published struct {
	Project   string
	Container string
	HostIP    netip.Addr
	HostPort  uint16
	Port      uint16
	Proto     string
}

// String renders the host side as `docker port` does: HOST_IP:HOST_PORT,
// [HOST_IP]:HOST_PORT for IPv6.
func (p Published) String() string { return netip.AddrPortFrom(p.HostIP, p.HostPort).String() }

var dportRE = regexp.MustCompile(`--dport (\d+)`)

// DestPort is the --dport of a rule spec (a DNAT rule's host port).
func DestPort(spec string) (uint16, bool) {
	dm := dportRE.FindStringSubmatch(spec)
	if dm == nil {
		return 0, false
	}
	p, err := strconv.ParseUint(dm[1], 10, 16)
	return uint16(p), err == nil
}

// ReadPublished lists the project's publishes from its DNAT rules, sorted
// by container, port, protocol, host address and port: what `topo port` shows.
func ReadPublished(project string, fw *state.Firewall) []Published {
	var out []Published
	// The chain as topo names it, or as an earlier topo did: a rule
	// counts only with the project's mark.
	for _, name := range []string{names.ChainPrefixOf(project) + names.SuffixDNAT, names.LegacyChainPrefixOf(project) + names.SuffixDNAT} {
		nat := fw.Table(TableNat).Chain(name)
		if nat == nil {
			continue
		}
		for _, r := range nat.Rules {
			p, ok := parsePublished(r.Spec)
			if ok && p.Project == project {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.HostIP != b.HostIP {
			return a.HostIP.Less(b.HostIP)
		}
		return a.HostPort < b.HostPort
	})
	return out
}

// ReadAllPublished lists the publishes of every project, in the order of
// their DNAT chains and rules.
func ReadAllPublished(fw *state.Firewall) []Published {
	nat := fw.Table(TableNat)
	if nat == nil {
		return nil
	}
	var out []Published
	for _, c := range nat.Chains {
		if c.Builtin || !strings.HasPrefix(c.Name, names.ChainPrefix) || !strings.HasSuffix(c.Name, "-"+names.SuffixDNAT) {
			continue
		}
		for _, r := range c.Rules {
			if p, ok := parsePublished(r.Spec); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// parsePublished reads a DNAT rule: its comment
// topo:PROJECT:port:CONTAINER/HOSTIP:[HOSTPORT]:PORT/PROTO and its --dport.
func parsePublished(spec string) (Published, bool) {
	mk, ok := names.ParseMark(Comment(spec))
	host, hok := DestPort(spec)
	if !ok || mk.Kind != names.KindPort || !hok {
		return Published{}, false
	}
	ctr, rest, ok1 := strings.Cut(mk.Name, "/")
	rest, proto, ok2 := strings.Cut(rest, "/")
	// The host address may be IPv6, colons and all: the last two parts
	// are the host and container ports.
	parts := strings.Split(rest, ":")
	if !ok1 || !ok2 || len(parts) < 3 {
		return Published{}, false
	}
	n := len(parts)
	ip, err1 := netip.ParseAddr(strings.Join(parts[:n-2], ":"))
	port, err2 := strconv.ParseUint(parts[n-1], 10, 16)
	if err1 != nil || err2 != nil {
		return Published{}, false
	}
	return Published{Project: mk.Project, Container: ctr, HostIP: ip, HostPort: host, Port: uint16(port), Proto: proto}, true
}
