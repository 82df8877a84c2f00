package planner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

const loopback6 = `
name: pub
networks:
  lan: {subnet: [10.42.0.0/24, "fd42::/64"]}
containers:
  web:
    networks: [lan]
    ports: ["[::1]:8081:80", "[::1]::53/udp"]
`

// Publishes on [::1] are the resolver's proxies: its own sockets on
// their ports change no plan and keep the port it picked; another
// project's publish of a port a socket holds on ::1 or :: is refused
// before any step, at its line.
func TestLoopback6Ports(t *testing.T) {
	k := fake.New(nil)
	ports := &state.HostPorts{EphemeralLow: 40000, EphemeralHigh: 40010}
	k.SetPorts(ports)
	f := parse(t, loopback6)
	up(t, k, f)
	obs, _ := k.Observe(context.Background(), "pub")
	if obs.Resolver == nil || !obs.Resolver.Alive || !strings.Contains(obs.Resolver.Records, `"listen": "[::1]:40000"`) {
		t.Fatalf("the resolver serves not the proxies, with the picked port 40000: %+v", obs.Resolver)
	}
	pid := obs.Resolver.PID
	ports.Sockets = []state.Socket{
		{Proto: "tcp", Addr: "::1", Port: 8081, PID: pid, Command: "topo"},
		{Proto: "udp", Addr: "::1", Port: 40000, PID: pid, Command: "topo"},
	}
	k.SetPorts(ports)
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("the resolver's own proxy sockets change the plan:\n%s", render(p))
	}

	ports.Sockets = append(ports.Sockets, state.Socket{Proto: "tcp", Addr: "::", Port: 9091, PID: 4242, Command: "nginx"})
	k.SetPorts(ports)
	for _, c := range []struct{ port, want string }{
		{"8081", `/lab/topo.yaml:8:13: container web: port "[::1]:8081:80": failed to bind host port [::1]:8081/tcp: address already in use: topo (pid `},
		{"9091", `/lab/topo.yaml:8:13: container web: port "[::1]:9091:80": failed to bind host port [::1]:9091/tcp: address already in use: nginx (pid 4242) listens on [::]:9091`},
	} {
		g := parse(t, strings.Replace(strings.NewReplacer("name: pub", "name: other", "10.42.0.0", "10.43.0.0", "fd42::", "fd43::").Replace(loopback6), "8081", c.port, 1))
		obs, _ := k.Observe(context.Background(), "other")
		if _, _, err := planner.Up(g, obs, planner.Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("another project publishing [::1]:%s: err = %v\nwant it to hold %q", c.port, err, c.want)
		}
	}
}
