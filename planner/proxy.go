package planner

import (
	"net/netip"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// Publishes on [::1] ("[::1]:8081:80"), for the host alone: a DNAT rule
// cannot make them (the kernel never routes a packet from ::1 off lo,
// and IPv6 has no route_localnet), so the project's resolver process
// forwards them (records.Proxy), as Docker's userland proxy does. They
// are planned as part of its records document, whose steps carry their
// undo, and are observed from it; no rule is made for them. The
// container's answers go back through the proxy, so no rule is needed
// either: the proxy's connection leaves the host by the bridge, as the
// host's own traffic to a container does.

// proxied reports whether p is forwarded by the resolver process.
func proxied(p firewall.Publish) bool { return p.HostIP == netip.IPv6Loopback() }

// proxies are the model's publishes the resolver process forwards, in
// container and file order.
func proxies(m *Model) []records.Proxy {
	var out []records.Proxy
	for _, c := range m.Containers {
		for _, p := range c.Publishes {
			if proxied(p) {
				out = append(out, records.Proxy{Key: p.Key(), Container: c.Name, Proto: p.Proto,
					Listen: netip.AddrPortFrom(p.HostIP, p.HostPort), Target: netip.AddrPortFrom(p.Addr, p.Port)})
			}
		}
	}
	return out
}

// ProxiesServed are the publishes the project's running resolver
// forwards, as `topo port` shows them: those of the records document it
// reports it loaded without a problem; none when it does not run, or
// serves another document.
func ProxiesServed(project string, r *state.Resolver) []firewall.Published {
	if r == nil || !r.Alive || r.Records == "" || r.Loaded != records.Hash([]byte(r.Records)) || len(r.Errors) > 0 {
		return nil
	}
	d, err := records.Decode([]byte(r.Records))
	if err != nil {
		return nil
	}
	var out []firewall.Published
	for _, px := range d.Proxies {
		out = append(out, firewall.Published{Project: project, Container: px.Container, HostIP: px.Listen.Addr(), HostPort: px.Listen.Port(), Port: px.Target.Port(), Proto: px.Proto})
	}
	return out
}

// readProxies keeps the host ports topo picked for the project's
// proxies, as readPublished keeps those of rules.
func (pk *portPicker) readProxies(r *state.Resolver) {
	if r == nil || r.Records == "" {
		return
	}
	if d, err := records.Decode([]byte(r.Records)); err == nil {
		for _, px := range d.Proxies {
			pk.kept[px.Key] = int(px.Listen.Port())
		}
	}
}

// resolverSocket reports whether s is the project's running resolver's:
// in the host's namespace, a proxy's, whose port is the project's own.
func resolverSocket(r *state.Resolver, s state.Socket) bool {
	return r != nil && r.Alive && s.PID != 0 && s.PID == r.PID
}
