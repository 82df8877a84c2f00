package planner

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/spec"
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
	pxs := recordedProxies(r)
	if len(pxs) == 0 || !r.Alive || r.Loaded != records.Hash([]byte(r.Records)) || len(r.Errors) > 0 {
		return nil
	}
	var out []firewall.Published
	for _, px := range pxs {
		out = append(out, firewall.Published{Project: project, Container: px.Container, HostIP: px.Listen.Addr(), HostPort: px.Listen.Port(), Port: px.Target.Port(), Proto: px.Proto})
	}
	return out
}

// readProxies keeps the host ports topo picked for the project's
// proxies, as readPublished keeps those of rules.
func (pk *portPicker) readProxies(r *state.Resolver) {
	for _, px := range recordedProxies(r) {
		pk.kept[px.Key] = int(px.Listen.Port())
	}
}

// recordedProxies are the proxies of the project's records document on
// disk. The document of a large project is large: it is decoded only
// when it has proxies.
func recordedProxies(r *state.Resolver) []records.Proxy {
	if r == nil || !strings.Contains(r.Records, `"proxies"`) {
		return nil
	}
	d, err := records.Decode([]byte(r.Records))
	if err != nil {
		return nil
	}
	return d.Proxies
}

// resolverSocket reports whether s is the project's running resolver's:
// in the host's namespace, a proxy's, whose port is the project's own.
func resolverSocket(r *state.Resolver, s state.Socket) bool {
	return r != nil && r.Alive && s.PID != 0 && s.PID == r.PID
}

// checkProxyPorts refuses, before any step, a fixed host port on [::1]
// that a socket of the host holds already on ::1 or on every IPv6
// address (::): the proxy's bind() would fail there. checkHostPorts
// checks the publishes that are rules.
func checkProxyPorts(f *spec.File, obs *state.Snapshot) error {
	if obs.Ports == nil {
		return nil
	}
	own := map[string]bool{} // the proxies the project has: its own ports
	for _, px := range recordedProxies(obs.Resolver) {
		own[px.Key] = true
	}
	var errs []error
	for _, c := range f.Containers {
		for _, p := range c.Ports {
			if p.HostIP != netip.IPv6Loopback() || p.HostStart == 0 || p.PicksHostPort() {
				continue
			}
			for i := 0; i <= int(p.HostEnd-p.HostStart); i++ {
				port := int(p.HostStart) + i
				if own[firewall.RandomKey(c.Name, p.HostIP, p.ContainerStart+uint16(i), p.Proto, false, uint16(port))] {
					continue
				}
				if s, ok := loopback6Holder(obs, p.Proto, port); ok {
					errs = append(errs, &spec.Error{Path: f.Path, Pos: p.Pos, Msg: fmt.Sprintf(
						"container %s: port %q: failed to bind host port [::1]:%d/%s: address already in use: %s; stop it, or publish on another host port",
						c.Name, p.Raw, port, p.Proto, holder(s))})
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// loopback6Holder is a socket of the host, not the project's resolver's,
// that holds port on ::1.
func loopback6Holder(obs *state.Snapshot, proto string, port int) (state.Socket, bool) {
	for _, s := range obs.Ports.Sockets {
		a, err := netip.ParseAddr(s.Addr)
		if err != nil || s.Proto != proto || s.Port != port || resolverSocket(obs.Resolver, s) {
			continue
		}
		if a == netip.IPv6Loopback() || a.Is6() && a.IsUnspecified() {
			return s, true
		}
	}
	return state.Socket{}, false
}
