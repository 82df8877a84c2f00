// Package resolvconf reads resolv.conf: the resolver forwards to its
// nameservers, and the machine avoids them when it picks subnets.
package resolvconf

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"strings"
)

// Host is where the host names its upstream resolvers.
const Host = "/etc/resolv.conf"

// maxNameservers is how many nameserver lines count, as glibc's MAXNS.
const maxNameservers = 3

// Nameservers lists the nameserver lines of a resolv.conf as HOST:53, at
// most maxNameservers. A scoped IPv6 address (fe80::1%eth0) keeps its
// zone.
func Nameservers(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(out) < maxNameservers {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, net.JoinHostPort(a.String(), "53"))
		}
	}
	return out
}
