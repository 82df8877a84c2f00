package planner

import "testing"

// TestCNIForwards: the chains that turn the host's forwarding on
// themselves, of which families, and those that do not.
func TestCNIForwards(t *testing.T) {
	for _, c := range []struct {
		chain  string
		v4, v6 bool
	}{
		{`{"plugins":[{"type":"bridge","isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/24"}]]}},{"type":"bandwidth"}]}`, true, false},
		{`{"plugins":[{"type":"bridge","isDefaultGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/24"}],[{"subnet":"fd88::/64"}]]}}]}`, true, true},
		{`{"plugins":[{"type":"bridge","ipam":{"type":"host-local","subnet":"10.88.0.0/24"}}]}`, false, false}, // no gateway: L2 alone
		{`{"plugins":[{"type":"ptp","ipam":{"type":"host-local","subnet":"fd89::/64"}}]}`, false, true},
		{`{"plugins":[{"type":"ptp","ipam":{"type":"static","addresses":[{"address":"10.89.0.2/24"}]}}]}`, true, false},
		{`{"plugins":[{"type":"ptp","ipam":{"type":"dhcp"}}]}`, true, false}, // no subnet named: IPv4
		{`{"plugins":[{"type":"macvlan","master":"lan0","ipam":{"type":"host-local","subnet":"192.168.50.0/24"}},{"type":"portmap"}]}`, false, false},
		{`{"plugins":[{"type":"bridge","isGateway":true,"ipam":{}}]}`, false, false}, // no IPAM: layer 2 alone
		{`not json`, false, false},
	} {
		if v4, v6 := cniForwards([]byte(c.chain)); v4 != c.v4 || v6 != c.v6 {
			t.Errorf("cniForwards(%s) = %v, %v; want %v, %v", c.chain, v4, v6, c.v4, c.v6)
		}
	}
}
