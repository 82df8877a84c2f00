package spec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

const portForms = `forms: "80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", "8000-8002:80-82", "53/udp"`

// parsePort parses one ports: entry,
// [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|/udp], as Docker's -p
// does but IPv4 only; like Docker it takes the protocol in any case
// ("53/UDP"). On failure it returns a message saying what is wrong.
// Single ports get End == Start; an unspecified host port is 0..0.
func parsePort(raw string) (*Port, string) {
	p := &Port{Raw: raw, HostIP: netip.IPv4Unspecified(), Proto: "tcp"}
	s := raw
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		p.Proto = strings.ToLower(s[i+1:])
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, fmt.Sprintf("port %q: protocol %q is not supported: use /tcp (the default) or /udp", clip(raw), clip(s[i+1:]))
		}
		s = s[:i]
	}
	parts := strings.Split(s, ":")
	var ip, host, ctr string
	switch len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
		if _, err := netip.ParseAddr(host); err == nil {
			// Docker reads "127.0.0.1:80" as a host port named 127.0.0.1.
			return nil, fmt.Sprintf("port %q: %q is an address, not a host port: to bind %s with a free host port write \"%s::%s\"", clip(raw), host, host, host, clip(ctr))
		}
		if host == "" {
			return nil, fmt.Sprintf("port %q: the host port before ':' is empty: write %q for a free host port", clip(raw), clip(ctr))
		}
	case 3:
		ip, host, ctr = parts[0], parts[1], parts[2]
		if strings.EqualFold(ctr, "tcp") || strings.EqualFold(ctr, "udp") {
			return nil, fmt.Sprintf("port %q: the protocol follows a '/': write \"%s:%s/%s\"", clip(raw), clip(ip), clip(host), strings.ToLower(ctr))
		}
	default:
		return nil, fmt.Sprintf("port %q: too many ':' (IPv6 host addresses are not supported); %s", clip(raw), portForms)
	}
	if len(parts) == 3 {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return nil, fmt.Sprintf("port %q: host address %q is not an IPv4 address like 127.0.0.1", clip(raw), clip(ip))
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
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Sprintf("port %q: %s port %s is out of range: ports are 1 to 65535", clip(raw), which, clip(s))
	}
	return uint16(n), ""
}
