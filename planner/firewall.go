package planner

import (
	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// Default ephemeral range, as Linux's net.ipv4.ip_local_port_range, for
// snapshots that carry none.
const (
	defaultEphemeralLow  = 32768
	defaultEphemeralHigh = 60999
)

// FirewallInput is what package firewall generates the model's rules from.
func FirewallInput(m *Model) firewall.Input {
	in := firewall.Input{Project: m.Project}
	for _, n := range m.Networks {
		if n.Driver.firewalled() {
			in.Networks = append(in.Networks, firewall.Net{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal})
		}
	}
	for _, c := range m.Containers {
		in.Publishes = append(in.Publishes, c.Publishes...)
	}
	return in
}

// firewall plans the rules (one step per table, applied in one batch),
// the route_localnet of bridges with publishes, and IPv6 off on internal
// networks' bridges (on others topo leaves it as it is).
func (d *differ) firewall(m *Model) {
	published := map[string]bool{}
	for _, c := range m.Containers {
		for _, p := range c.Publishes {
			published[p.Network] = true
		}
	}
	sysctl := func(n *Network, key, want string) {
		have := "0"
		if d.bridges[n.Name] != nil {
			if v := d.obs.Sysctls[key]; v != "" {
				have = v
			}
		}
		if have != want {
			d.add(change(op.Network(n.Name), op.Sysctl{Key: key, Value: want}, op.Sysctl{Key: key, Value: have}))
		}
	}
	for _, n := range m.Networks {
		localnet := "0"
		if published[n.Name] && !n.Internal {
			localnet = "1"
		}
		sysctl(n, names.RouteLocalnet(n.Bridge), localnet)
		if n.Internal {
			sysctl(n, names.IPv6Off(n.Bridge), "1")
		}
	}

	want := firewall.Generate(FirewallInput(m))
	for _, tc := range firewall.Diff(m.Project, want, d.obs.Firewall) {
		adds, dels := 0, 0
		for _, c := range tc.Changes {
			if c.Adds() {
				adds++
			} else {
				dels++
			}
		}
		action := op.Change
		switch {
		case dels == 0:
			action = op.Create
		case adds == 0:
			action = op.Destroy
		}
		d.add(step(action, op.Firewall(tc.Table), op.FirewallBatch{Table: tc.Table, Changes: tc.Changes},
			op.FirewallBatch{Table: tc.Table, Changes: firewall.Invert(tc.Changes)}))
	}
}
