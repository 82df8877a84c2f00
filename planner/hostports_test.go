package planner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

const published = `
name: pub
networks:
  lan: {subnet: 10.42.0.0/24}
containers:
  web:
    networks: [lan]
    ports: ["18080:80", "5300:53/udp", "127.0.0.1::81", "10.0.0.5::81"]
`

// A listener on a host port the project already publishes is not taken
// for a conflict (the DNAT rule is topo's own), so the project can still
// be planned and repaired; the same listener stops a new publish of the
// port by another project before any step.
func TestOwnPublishIsNoConflict(t *testing.T) {
	k := fake.New(nil)
	ports := &state.HostPorts{EphemeralLow: 40000, EphemeralHigh: 40010}
	k.SetPorts(ports)
	f := parse(t, published)
	up(t, k, f)
	ports.Sockets = []state.Socket{
		{Proto: "tcp", Addr: "::", Port: 18080, PID: 4242, Command: "python3"},
		{Proto: "udp", Addr: "0.0.0.0", Port: 5300, PID: 90, Command: "dnsmasq"},
	}
	k.SetPorts(ports)
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("a listener on the project's own publish changes the plan:\n%s", render(p))
	}
	// Another project's new publish of those ports is stopped by them.
	other := parse(t, strings.NewReplacer("name: pub", "name: other", "10.42.0.0", "10.43.0.0").Replace(published))
	obs, _ := k.Observe(context.Background(), "other")
	_, _, err := planner.Up(other, obs, planner.Options{})
	for _, want := range []string{
		`/lab/topo.yaml:8:13: container web: port "18080:80": failed to bind host port 0.0.0.0:18080/tcp: address already in use: python3 (pid 4242) listens on [::]:18080, which takes IPv4 too`,
		`/lab/topo.yaml:8:25: container web: port "5300:53/udp": failed to bind host port 0.0.0.0:5300/udp: address already in use: dnsmasq (pid 90) is bound to 0.0.0.0:5300`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("another project publishing the same ports: err = %v\nwant it to hold %q", err, want)
		}
	}
}

// A container port published on two host addresses without host ports
// gets one port on both, and keeps it; a port the kernel gave each its
// own (an earlier topo) becomes the first one's for both.
func TestRandomPortIsSharedAcrossHostAddresses(t *testing.T) {
	k := fake.New(nil)
	ports := &state.HostPorts{EphemeralLow: 40000, EphemeralHigh: 40010, Reserved: []state.PortRange{{Low: 40000, High: 40000}}}
	k.SetPorts(ports)
	f := parse(t, published)
	up(t, k, f)
	hostPorts := func() map[string]uint16 {
		obs, _ := k.Observe(context.Background(), "pub")
		out := map[string]uint16{}
		for _, p := range firewall.ReadPublished("pub", obs.Firewall) {
			if p.Port == 81 {
				out[p.HostIP.String()] = p.HostPort
			}
		}
		return out
	}
	if d := cmp.Diff(map[string]uint16{"127.0.0.1": 40001, "10.0.0.5": 40001}, hostPorts()); d != "" {
		t.Errorf("host ports of 81 (-want +got):\n%s", d)
	}
	// A lower port frees up: both stay.
	ports.Reserved = nil
	k.SetPorts(ports)
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("re-plan moves the shared port:\n%s", render(p))
	}

	// An earlier topo gave each address its own port.
	obs, _ := k.Observe(context.Background(), "pub")
	_, model, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := planner.FirewallInput(model, firewall.IPv4)
	for i, p := range m.Publishes {
		if p.Port == 81 && p.HostIP.String() == "10.0.0.5" {
			m.Publishes[i].HostPort = 40007
		}
	}
	for _, tc := range firewall.Diff("pub", firewall.Generate(m), obs.Firewall) {
		if err := k.Apply(context.Background(), op.FirewallBatch{Table: tc.Table, Changes: tc.Changes}); err != nil {
			t.Fatal(err)
		}
	}
	if d := cmp.Diff(map[string]uint16{"127.0.0.1": 40001, "10.0.0.5": 40007}, hostPorts()); d != "" {
		t.Fatalf("seeded host ports of 81 (-want +got):\n%s", d)
	}
	up(t, k, f)
	if d := cmp.Diff(map[string]uint16{"127.0.0.1": 40001, "10.0.0.5": 40001}, hostPorts()); d != "" {
		t.Errorf("host ports of 81 after up (-want +got):\n%s", d)
	}
}

func render(p *planner.Plan) string {
	var b strings.Builder
	view.NewPlanView(&b, false).Plan(p)
	return b.String()
}

// SCTP publishes need SCTP conntrack and iptables' sctp match: a kernel
// observed without one of them refuses them before the first step, naming
// only what is missing; tcp and udp publishes are not held up by it, and
// an SCTP socket on a host port stops a publish of it as a TCP one does.
func TestSCTPNeedsKernelSupport(t *testing.T) {
	f := parse(t, `
name: sig
containers:
  amf:
    ports: ["38412:38412/sctp", "80"]
  web:
    ports: ["8080:80"]
`)
	for _, tt := range []struct {
		have      state.SCTPSupport
		want, not string
	}{
		{state.SCTPSupport{Conntrack: true}, "it lacks iptables' sctp match (module xt_sctp, CONFIG_NETFILTER_XT_MATCH_SCTP)", "CONFIG_NF_CT_PROTO_SCTP"},
		{state.SCTPSupport{Match: true}, "it lacks SCTP connection tracking, without which NAT rewrites no SCTP port (CONFIG_NF_CT_PROTO_SCTP, part of nf_conntrack);", "xt_sctp"},
	} {
		have := tt.have
		obs := &state.Snapshot{Ports: &state.HostPorts{EphemeralLow: 40000, EphemeralHigh: 40010, SCTP: &have}}
		_, _, err := planner.Up(f, obs, planner.Options{})
		if err == nil || !strings.Contains(err.Error(), `/lab/topo.yaml:5:13: container amf: port "38412:38412/sctp": this kernel cannot publish SCTP ports: `+tt.want) ||
			strings.Contains(err.Error(), tt.not) || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("with %+v: err = %v\nwant one line holding %q, not %q", tt.have, err, tt.want, tt.not)
		}
	}
	ports := &state.HostPorts{EphemeralLow: 40000, EphemeralHigh: 40010, SCTP: &state.SCTPSupport{Conntrack: true, Match: true},
		Sockets: []state.Socket{{Proto: "sctp", Addr: "10.0.0.5", Port: 38412, PID: 77, Command: "open5gs-amfd"}}}
	obs := &state.Snapshot{Ports: ports}
	_, _, err := planner.Up(f, obs, planner.Options{})
	want := `/lab/topo.yaml:5:13: container amf: port "38412:38412/sctp": failed to bind host port 0.0.0.0:38412/sctp: address already in use: open5gs-amfd (pid 77) listens on 10.0.0.5:38412`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("an SCTP socket on the host port: err = %v\nwant %q", err, want)
	}
	ports.Sockets = nil
	if _, _, err := planner.Up(f, obs, planner.Options{}); err != nil {
		t.Errorf("a kernel with SCTP support: %v", err)
	}
}
