package spec

import "testing"

// An IPv6-only network reads the same from topo's file and Compose's:
// enable_ipv4: false with IPv6 (a subnet, or enable_ipv6: true).
func TestIPv6OnlyNetworks(t *testing.T) {
	for _, c := range []struct{ path, src string }{
		{"/x/lab/topo.yaml", "networks:\n  six: {enable_ipv4: false, subnet: \"fd42:3::/64\"}\ncontainers:\n  a: {networks: [six], ports: [\"8080:80\", \"[::1]:8081:80\"]}\n"},
		{"/x/lab/compose.yaml", "services:\n  a: {networks: [six], ports: [\"8080:80\", \"[::1]:8081:80\"]}\nnetworks:\n  six: {enable_ipv4: false, enable_ipv6: true}\n"},
	} {
		f, err := Parse(c.path, []byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		nw := f.Network("six")
		if nw == nil || !nw.IPv4Off || nw.IPv4() || !nw.IPv6() || nw.Subnet.IsValid() {
			t.Errorf("%s: network six %+v, want IPv6 alone", c.path, nw)
		}
	}
}
