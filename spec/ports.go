package spec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

const portForms = `forms: "80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", "[::]:8080:80", "[::]::443", "8000-8002:80-82", "53/udp", "3456/sctp"`

// Protocols are the protocols a port publishes, as Docker takes them.
var Protocols = []string{"tcp", "udp", "sctp"}

// splitPortParts splits a ports: entry at its ':' as Docker's -p does
// (go-connections nat.splitParts): the last part is the container port,
// the one before it the host port, and all before those the host
// address, so that an IPv6 address keeps its colons ("::1:80:80",
// "[::1]:80:80", "::::80"). "::80" is three parts, an empty address and
// an empty host port: 0.0.0.0 and a free port.
func splitPortParts(raw string) (ip, host, ctr string, n int) {
	parts := strings.Split(raw, ":")
	n = len(parts)
	switch n {
	case 1:
		return "", "", parts[0], n
	case 2:
		return "", parts[0], parts[1], n
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1], n
	}
}

// parsePort parses one ports: entry,
// [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO], by the rules
// of Docker's -p (nat.ParsePortSpec): the ':' split of splitPortParts,
// then the protocol after the first '/' of the container part, any case,
// tcp when empty ("80/" is 80/tcp); an empty host address is 0.0.0.0 and
// an empty host port, or 0, a free one. Container port 0, which Docker
// takes, is refused. On
// failure it returns a message saying what is wrong. Single ports get
// End == Start; an unspecified host port is 0..0.
func parsePort(raw string) (*Port, string) {
	p := &Port{Raw: raw, HostIP: netip.IPv4Unspecified()}
	ip, host, ctr, parts := splitPortParts(raw)
	ctr, proto, _ := strings.Cut(ctr, "/")
	p.Proto = strings.ToLower(proto)
	if p.Proto == "" {
		p.Proto = "tcp"
	}
	if !isProtocol(p.Proto) {
		return nil, fmt.Sprintf("port %q: protocol %q is not supported: use /tcp (the default), /udp or /sctp", clip(raw), clip(proto))
	}
	if isProtocol(strings.ToLower(ctr)) && host != "" {
		// "8080:80:tcp": Docker would read a host address 8080.
		return nil, fmt.Sprintf("port %q: the protocol follows a '/': write \"%s/%s\"", clip(raw), clip(strings.TrimSuffix(raw, ":"+ctr)), strings.ToLower(ctr))
	}
	if parts == 2 {
		if _, err := netip.ParseAddr(host); err == nil {
			// Docker reads "127.0.0.1:80" as a host port named 127.0.0.1.
			return nil, fmt.Sprintf("port %q: %q is an address, not a host port: to bind %s with a free host port write \"%s::%s\"", clip(raw), host, host, host, clip(ctr))
		}
	}
	if ip != "" {
		a, msg := parseHostIP(raw, ip)
		if msg != "" {
			return nil, msg
		}
		p.HostIP = a
	}
	if ctr == "" {
		return nil, fmt.Sprintf("port %q: the container port is missing; %s", clip(raw), portForms)
	}
	var msg string
	if p.ContainerStart, p.ContainerEnd, msg = parseRange(raw, "container", ctr); msg != "" {
		return nil, msg
	}
	if host == "0" {
		host = "" // Docker's host port 0: a free one
	}
	if host != "" {
		if p.HostStart, p.HostEnd, msg = parseRange(raw, "host", host); msg != "" {
			return nil, msg
		}
		// A host range onto one container port publishes it on one free
		// port of the range, as Docker does.
		hn, cn := int(p.HostEnd-p.HostStart)+1, int(p.ContainerEnd-p.ContainerStart)+1
		switch {
		case hn == 1 && cn > 1:
			return nil, fmt.Sprintf("port %q: a container port range needs a host range of the same length (%d ports), e.g. \"%d-%d:%d-%d\", or no host port: %q",
				clip(raw), cn, p.HostStart, int(p.HostStart)+cn-1, p.ContainerStart, p.ContainerEnd, clip(ctr))
		case hn != cn && cn > 1:
			return nil, fmt.Sprintf("port %q: host range has %d ports but container range has %d; they must be the same length", clip(raw), hn, cn)
		}
	}
	return p, ""
}

func isProtocol(s string) bool {
	for _, p := range Protocols {
		if s == p {
			return true
		}
	}
	return false
}

// parseHostIP reads the host address of a ports: entry, IPv4 or IPv6,
// with or without brackets, as Docker does.
func parseHostIP(raw, ip string) (netip.Addr, string) {
	s := ip
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		return netip.Addr{}, fmt.Sprintf("port %q: host address %q is not an address like 127.0.0.1 or [fd00::1]", clip(raw), clip(ip))
	case a.Is4In6():
		return a.Unmap(), ""
	}
	return a, ""
}

// parseRange parses PORT or START-END, each 1..65535.
func parseRange(raw, which, s string) (start, end uint16, msg string) {
	a, b, isRange := strings.Cut(s, "-")
	if s == "" || a == "" || isRange && b == "" {
		return 0, 0, fmt.Sprintf("port %q: %s port %q is not a port or a START-END range; %s", clip(raw), which, clip(s), portForms)
	}
	start, msg = parsePortNumber(raw, which, a)
	if msg != "" {
		return 0, 0, msg
	}
	if !isRange {
		return start, start, ""
	}
	end, msg = parsePortNumber(raw, which, b)
	if msg != "" {
		return 0, 0, msg
	}
	if end < start {
		return 0, 0, fmt.Sprintf("port %q: %s range %s ends before it starts; write %d-%d", clip(raw), which, clip(s), end, start)
	}
	return start, end, ""
}

func parsePortNumber(raw, which, s string) (uint16, string) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Sprintf("port %q: %s port %q is not a number; %s", clip(raw), which, clip(s), portForms)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err == nil && n == 0 && which == "container" {
		// Docker takes it, and forwards to a port no socket can have.
		return 0, fmt.Sprintf("port %q: container port 0 cannot be published: nothing listens on port 0 (Docker accepts it and forwards to it all the same); write the port the container's program listens on", clip(raw))
	}
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Sprintf("port %q: %s port %s is out of range: ports are 1 to 65535", clip(raw), which, clip(s))
	}
	return uint16(n), ""
}

// publishKey is what a ports: entry publishes: host address, host port
// or range, container port or range and protocol. Compose keeps one of
// the entries of one unique key, and so does topo.
type publishKey struct {
	hostIP                               netip.Addr
	hostStart, hostEnd, ctrStart, ctrEnd uint16
	proto                                string
}

func (p *Port) publishes() publishKey {
	return publishKey{p.HostIP, p.HostStart, p.HostEnd, p.ContainerStart, p.ContainerEnd, p.Proto}
}
