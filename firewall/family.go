package firewall

import "fmt"

// Family is the address family of a firewall's tables: IPv4's, which
// iptables writes, or IPv6's, which ip6tables writes. The kernel keeps
// the two apart; the rules of each are generated, diffed and applied on
// their own, with the same chain layout.
type Family uint8

// Families; the zero value is IPv4, as every batch before IPv6 was.
const (
	IPv4 Family = iota
	IPv6
)

// Families lists them in the order they are planned.
var Families = []Family{IPv4, IPv6}

// Program is the family's command: "iptables" or "ip6tables".
func (f Family) Program() string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// String is "ipv4" or "ipv6", as plans and journals write it.
func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// MarshalText writes the family as String does.
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a family as String writes it.
func (f *Family) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ipv4":
		*f = IPv4
	case "ipv6":
		*f = IPv6
	default:
		return fmt.Errorf("unknown address family %q: want ipv4 or ipv6", b)
	}
	return nil
}
