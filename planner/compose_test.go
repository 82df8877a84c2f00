package planner_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// TestComposeIPAM: ip_range limits the addresses IPAM picks, fixed ones
// may be anywhere in the subnet, and aux_addresses are never given.
func TestComposeIPAM(t *testing.T) {
	f := parse(t, `
name: lab
services:
  fixed: {networks: {wan: {ipv4_address: 10.77.2.5}}}
  a: {networks: [wan]}
  b: {networks: [wan]}
networks:
  wan:
    ipam:
      config:
        - subnet: 10.77.2.0/24
          ip_range: 10.77.2.128/25
          aux_addresses: {monitor: 10.77.2.128, probe: 10.77.2.130}
`)
	m, err := planner.Desire(f, &state.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range m.Containers {
		got[c.Name] = c.Endpoints[0].Addr.String()
	}
	want := map[string]string{"fixed": "10.77.2.5/24", "a": "10.77.2.129/24", "b": "10.77.2.131/24"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}
}

// TestComposePriorities: priority orders the interfaces (highest is eth0),
// gw_priority chooses the network of the default route.
func TestComposePriorities(t *testing.T) {
	f := parse(t, `
services:
  gw:
    networks:
      mgmt: {}
      uplink: {priority: 50, gw_priority: 10}
      dmz: {priority: 100}
networks:
  dmz: {ipam: {config: [{subnet: 10.91.0.0/24}]}}
  uplink: {ipam: {config: [{subnet: 10.91.1.0/24}]}}
  mgmt: {internal: true, ipam: {config: [{subnet: 10.91.2.0/24}]}}
`)
	m, err := planner.Desire(f, &state.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Containers[0]
	var order []string
	for _, e := range c.Endpoints {
		order = append(order, e.IfName+"="+e.Network)
	}
	if d := cmp.Diff([]string{"eth0=dmz", "eth1=uplink", "eth2=mgmt"}, order); d != "" {
		t.Errorf("interfaces (-want +got):\n%s", d)
	}
	if want := netip.MustParseAddr("10.91.1.1"); c.DefaultGW != want {
		t.Errorf("default gateway %s, want %s (uplink's, by gw_priority)", c.DefaultGW, want)
	}
}

// TestHostRangeOntoOnePort: 8000-8010:80 publishes 80 on the lowest port
// of the range that nothing uses (a socket on one is no error: the range
// is not a fixed port), one port for every host address of the same
// entry, keeps it across plans, and fails at the entry when the range is
// full.
func TestHostRangeOntoOnePort(t *testing.T) {
	src := `
services:
  web: {ports: ["8000-8002:80", "8000-8002:81", "127.0.0.1:8100-8102:82", "127.0.0.2:8100-8102:82"]}
`
	f := parse(t, src)
	busy := func(ports ...int) *state.HostPorts {
		hp := &state.HostPorts{EphemeralLow: 32768, EphemeralHigh: 60999}
		for _, p := range ports {
			hp.Sockets = append(hp.Sockets, state.Socket{Proto: "tcp", Addr: "0.0.0.0", Port: p})
		}
		return hp
	}
	obs := &state.Snapshot{Ports: busy(8000)}
	m, err := planner.Desire(f, obs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range m.Containers[0].Publishes {
		got = append(got, fmt.Sprintf("%d->%d %s", p.HostPort, p.Port, p.Key()))
	}
	want := []string{"8001->80 web/0.0.0.0:8000-8002:80/tcp", "8002->81 web/0.0.0.0:8000-8002:81/tcp",
		"8100->82 web/127.0.0.1:8100-8102:82/tcp", "8100->82 web/127.0.0.2:8100-8102:82/tcp"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("publishes (-want +got):\n%s", d)
	}

	// Up on the fake kernel, then the busy port frees: the pick is kept.
	k := fake.New(&state.Snapshot{Ports: busy(8000)})
	up(t, k, f)
	k.SetPorts(busy())
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("plan after the port freed, want no changes:\n%s", steps(p))
	}

	full := &state.Snapshot{Ports: busy(8000, 8001, 8002)}
	_, err = planner.Desire(f, full)
	if want := `/lab/topo.yaml:3:17: container web: port "8000-8002:80": no free tcp port left in 8000-8002`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Desire with the range in use: %v, want %s", err, want)
	}
}

// TestComposeCollidingInterfaceNames: the interface names of a Compose
// project are checked as a topo file's, at the Compose files' positions;
// a network of the second -f file names the first where the other one is.
func TestComposeCollidingInterfaceNames(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "compose.override.yaml")
	files := map[string]string{a: `name: hash
services:
  c39e207c2b30: {networks: [n, nc87f78da9ac2]}
  cb9736cc70dd: {networks: [n]}
networks:
  n: {}
  nc87f78da9ac2: {}
`,
		b: `services:
  d: {networks: [n3eea6ea1a78d]}
networks:
  n3eea6ea1a78d: {}
`,
	}
	for p, src := range files {
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := spec.LoadFiles(spec.Options{Files: []string{a, b}, EnvFiles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := b + `:4:3: network "n3eea6ea1a78d": its bridge would be named br-e0061739e713, like network "nc87f78da9ac2"'s (` + a + `:7): the hashes of the two names agree in the 12 digits a bridge name holds; rename one of the networks` + "\n" +
		a + `:4:29: container "cb9736cc70dd": its veth to network "n" would be named veth7bfcea6ff23, like container "c39e207c2b30"'s to network "n" (line 3): the hashes of the two agree in the 11 digits a veth name holds; rename one of the containers`
	if err := planner.Check(f); err == nil || err.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", err, want)
	}
}
