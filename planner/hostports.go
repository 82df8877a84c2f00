package planner

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// checkHostPorts refuses, before any step, a fixed host port that the
// host already uses: a socket that a bind() of the publish's address and
// port would collide with, or another project's publish of it. Docker
// binds every published port and fails there ("address already in use");
// topo's publishes are DNAT rules, which would silently take the port
// over. A publish the project's rules already hold is topo's own and is
// not checked again.
func checkHostPorts(f *spec.File, obs *state.Snapshot) error {
	type key struct {
		proto string
		port  int
	}
	sockets := map[key][]state.Socket{}
	if obs.Ports != nil {
		for _, s := range obs.Ports.Sockets {
			k := key{s.Proto, s.Port}
			sockets[k] = append(sockets[k], s)
		}
	}
	own := map[string]bool{}
	others := map[key][]firewall.Published{}
	for _, p := range append(firewall.ReadAllPublished(obs.Firewall), firewall.ReadAllPublished(obs.Firewall6)...) {
		if p.Project == f.Project {
			own[firewall.RandomKey(p.Container, p.HostIP, p.Port, p.Proto, false, p.HostPort)] = true
			continue
		}
		k := key{p.Proto, int(p.HostPort)}
		others[k] = append(others[k], p)
	}
	if len(sockets) == 0 && len(others) == 0 {
		return nil
	}

	var errs []error
	for _, c := range f.Containers {
		if c.Mode != spec.ModeBridge {
			continue
		}
		for _, p := range c.Ports {
			if p.HostStart == 0 || p.PicksHostPort() {
				continue // topo picks a free one
			}
			var first string
			more := 0
			for i := 0; i <= int(p.HostEnd-p.HostStart); i++ {
				hostPort := p.HostStart + uint16(i)
				if own[firewall.RandomKey(c.Name, p.HostIP, p.ContainerStart+uint16(i), p.Proto, false, hostPort)] {
					continue
				}
				k := key{p.Proto, int(hostPort)}
				msg := ""
				for _, s := range sockets[k] {
					if a, ok := ipv4Of(s); ok && bindCollides(a, p.HostIP) {
						msg = fmt.Sprintf("failed to bind host port %s:%d/%s: address already in use: %s; stop it, or publish on another host port",
							p.HostIP, hostPort, p.Proto, holder(s))
						break
					}
				}
				for _, o := range others[k] {
					if msg == "" && bindCollides(o.HostIP, p.HostIP) {
						msg = fmt.Sprintf("host port %s:%d/%s is already published by container %s of project %s (on %s); publish on another host port, or take that project down first (topo down -p %s)",
							p.HostIP, hostPort, p.Proto, o.Container, o.Project, o, o.Project)
					}
				}
				switch {
				case msg == "":
				case first == "":
					first = msg
				default:
					more++
				}
			}
			if first == "" {
				continue
			}
			switch {
			case more == 1:
				first += " (1 more port of the range is taken too)"
			case more > 1:
				first += fmt.Sprintf(" (%d more ports of the range are taken too)", more)
			}
			errs = append(errs, &spec.Error{Path: f.Path, Pos: p.Pos, Msg: fmt.Sprintf("container %s: port %q: %s", c.Name, p.Raw, first)})
		}
	}
	return errors.Join(errs...)
}

// ipv4Of is the IPv4 address a socket holds its port on: its own, the
// one an IPv4-mapped address maps, or every address for :: without
// IPV6_V6ONLY. Other IPv6 sockets hold no IPv4 port.
func ipv4Of(s state.Socket) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s.Addr)
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	switch {
	case a.Is4():
		return a, true
	case a.IsUnspecified() && !s.V6Only:
		return netip.IPv4Unspecified(), true
	}
	return netip.Addr{}, false
}

// bindCollides reports whether something bound to the IPv4 address have
// keeps a bind() of the same port on want from succeeding: the same
// address, or either one every address.
func bindCollides(have, want netip.Addr) bool {
	return have.IsUnspecified() || want.IsUnspecified() || have == want
}

// holder says who holds a socket and where, for messages.
func holder(s state.Socket) string {
	who := "a process topo cannot see"
	if s.PID != 0 {
		who = fmt.Sprintf("%s (pid %d)", s.Command, s.PID)
	}
	verb := "listens on"
	if s.Proto == "udp" {
		verb = "is bound to"
	}
	a, _ := netip.ParseAddr(s.Addr)
	where := netip.AddrPortFrom(a, uint16(s.Port)).String()
	if a.Is6() && a.IsUnspecified() {
		where += ", which takes IPv4 too"
	}
	hint := ""
	if s.PID == 0 {
		flags := "tlnp"
		if s.Proto == "udp" {
			flags = "uanp"
		}
		hint = fmt.Sprintf(" (ss -%s sport = :%d names it)", flags, s.Port)
	}
	return fmt.Sprintf("%s %s %s%s", who, verb, where, hint)
}

// checkSCTP refuses, before any step, SCTP publishes on a kernel that
// lacks what they need (state.SCTPSupport): rules it cannot load, or
// DNAT that rewrites no SCTP port. One message per container, at its
// first SCTP entry.
func checkSCTP(f *spec.File, obs *state.Snapshot) error {
	if obs.Ports == nil || obs.Ports.SCTP == nil {
		return nil // not observed: the real kernel always says
	}
	var missing []string
	fix := "use a kernel built with it"
	if !obs.Ports.SCTP.Conntrack {
		missing = append(missing, "SCTP connection tracking, without which NAT rewrites no SCTP port (CONFIG_NF_CT_PROTO_SCTP, part of nf_conntrack)")
	}
	if !obs.Ports.SCTP.Match {
		missing = append(missing, "iptables' sctp match (module xt_sctp, CONFIG_NETFILTER_XT_MATCH_SCTP)")
		fix = "load xt_sctp where it is a module (modprobe xt_sctp), or use a kernel built with it"
	}
	if len(missing) == 0 {
		return nil
	}
	var errs []error
	for _, c := range f.Containers {
		for _, p := range c.Ports {
			if p.Proto == "sctp" {
				errs = append(errs, &spec.Error{Path: f.Path, Pos: p.Pos, Msg: fmt.Sprintf(
					"container %s: port %q: this kernel cannot publish SCTP ports: it lacks %s; %s, or publish over tcp or udp",
					c.Name, p.Raw, strings.Join(missing, ", and "), fix)})
				break
			}
		}
	}
	return errors.Join(errs...)
}
