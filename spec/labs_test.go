package spec_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/spec"
)

// TestLabs reads every key of the labs: links in both forms, routes,
// sysctls in both forms, interface names, MACs and impairment, and a
// container on links only gets no default network.
func TestLabs(t *testing.T) {
	f, err := spec.Parse("/lab/topo.yaml", []byte(`
name: lab
networks:
  lan: {subnet: 10.1.0.0/24}
containers:
  h:
    networks: {lan: {interface_name: lan0, mac_address: "02:00:00:00:00:10", impairment: {rate: 1.5mbit}}}
    routes: [{to: default, via: 10.1.0.254, metric: 5}, {to: 10.9.0.0/24, dev: lan0}]
  r: {sysctls: ["net.ipv4.ip_forward=1"], networks: [lan]}
  r2: {network_mode: none, sysctls: {net.ipv4.ip_forward: true}}
  solo: {}
links:
  - endpoints:
      - {container: r, interface: eth9, address: 10.0.12.0/31, mac: "02:00:00:00:12:00"}
      - {container: r2, interface: eth9, address: 10.0.12.1/31}
    mtu: 9000
    impairment: {delay: 20ms, jitter: 2ms, loss: 0.5%, duplicate: 1, corrupt: 0.1%, reorder: 25%, rate: 100mbit}
  - endpoints: ["r:eth8", "solo:eth0"]
`))
	if err != nil {
		t.Fatal(err)
	}
	h := f.Container("h")
	if a := h.Networks[0]; a.IfName != "lan0" || a.MAC.String() != "02:00:00:00:00:10" || a.Impairment == nil || a.Impairment.Rate != 1_500_000 {
		t.Errorf("h's attachment: %+v", a)
	}
	if r := h.Routes; len(r) != 2 || !r[0].IsDefault() || r[0].Via != netip.MustParseAddr("10.1.0.254") || r[0].Metric != 5 || r[1].Dev != "lan0" || r[1].Via.IsValid() {
		t.Errorf("h's routes: %+v %+v", r[0], r[1])
	}
	for _, c := range []string{"r", "r2"} {
		if s := f.Container(c).Sysctls; len(s) != 1 || s[0].Key != "net.ipv4.ip_forward" || s[0].Value != "1" {
			t.Errorf("%s's sysctls: %+v", c, s)
		}
	}
	if n := f.Container("solo").Networks; len(n) != 0 || f.Network("default") != nil {
		t.Errorf("a container on a link only joined %+v", n)
	}
	l := f.Links[0]
	imp := spec.Impairment{Pos: l.Impairment.Pos, Rate: 100e6, Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.5, Duplicate: 1, Corrupt: 0.1, Reorder: 25}
	if l.MTU != 9000 || *l.Impairment != imp || !l.Impairment.NeedsNetem() || l.Ends[0].MAC.String() != "02:00:00:00:12:00" || l.Ends[1].Addr != netip.MustParsePrefix("10.0.12.1/31") {
		t.Errorf("link 1: %+v %+v %+v %+v", l, *l.Impairment, *l.Ends[0], *l.Ends[1])
	}
	if e := f.Links[1].Ends; e[0].Container != "r" || e[0].Interface != "eth8" || e[1].Container != "solo" || e[1].Addr.IsValid() {
		t.Errorf("link 2, short form: %+v %+v", *e[0], *e[1])
	}
}

// TestComposeLabs: a Compose service's sysctls and a network's
// interface_name and mac_address are read; sysctls of other namespaces
// than the network's are notes.
func TestComposeLabs(t *testing.T) {
	f, err := spec.Parse("/lab/compose.yaml", []byte(`
services:
  r:
    sysctls: {net.ipv4.ip_forward: 1, kernel.shmmax: 65536}
    networks: {lan: {interface_name: lan, mac_address: "02:00:00:00:00:01"}}
networks:
  lan: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := f.Container("r")
	if len(r.Sysctls) != 1 || r.Sysctls[0].Key != "net.ipv4.ip_forward" || r.Networks[0].IfName != "lan" || r.Networks[0].MAC.String() != "02:00:00:00:00:01" {
		t.Errorf("service r: sysctls %+v, attachment %+v", r.Sysctls, r.Networks[0])
	}
	var notes []string
	for _, n := range f.Notes {
		notes = append(notes, n.Error())
	}
	if s := strings.Join(notes, "\n"); !strings.Contains(s, "services.r.sysctls.kernel.shmmax is not a net.* key") {
		t.Errorf("no note of the IPC sysctl:\n%s", s)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{"20mbit": 20e6, "100k": 1e5, "1gbit": 1e9, "500kbps": 4e6, "1.5Mbit": 1.5e6, "64": 64} {
		if got, err := spec.ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1mbit", "0", "2tbit", "4"} {
		if _, err := spec.ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}
