package planner_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

const dnsFile = `
name: shop
networks:
  front: {subnet: 10.0.1.0/24}
  back: {subnet: 10.0.2.0/24, internal: true}
containers:
  web:
    hostname: Web.Example
    networks:
      front: {aliases: [www, api]}
      back: {}
  api2:
    networks:
      front: {aliases: [api]}
  probe: {network_mode: "container:web"}
  tools: {network_mode: none}
  edge: {network_mode: host}
`

func TestRecordsAndFiles(t *testing.T) {
	f := parse(t, dnsFile)
	m, err := planner.Desire(f, &state.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	want := &records.Document{
		Project: "shop",
		Namespaces: []records.Namespace{
			{Name: "shop-web", Containers: []string{"web", "probe"}, Networks: []string{"front", "back"}},
			{Name: "shop-api2", Containers: []string{"api2"}, Networks: []string{"front"}},
			{Name: "shop-tools", Containers: []string{"tools"}},
		},
		Networks: []records.Network{
			{Name: "front", Members: []records.Member{
				{Container: "web", Addr: a("10.0.1.2"), Names: []string{"web", "web.example", "www", "api"}},
				{Container: "api2", Addr: a("10.0.1.3"), Names: []string{"api2", "api"}},
			}},
			{Name: "back", Internal: true, Members: []records.Member{
				{Container: "web", Addr: a("10.0.2.2"), Names: []string{"web", "web.example"}},
			}},
		},
	}
	got := planner.Records(m)
	if d := cmp.Diff(string(records.Encode(want)), string(records.Encode(got))); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	if back, err := records.Decode(records.Encode(got)); err != nil || cmp.Diff(records.Encode(got), records.Encode(back)) != "" {
		t.Errorf("records do not survive encoding: %v", err)
	}
	// Docker's lines (the e2e test checks them all), then each address
	// with the hostname, its first label and the names of the containers
	// in the namespace.
	if h := planner.Hosts(m, "shop-web"); !strings.HasPrefix(h, "# Written by topo for project shop.\n127.0.0.1\tlocalhost\n") ||
		!strings.HasSuffix(h, "ff02::2\tip6-allrouters\n10.0.1.2\tweb.example web probe\n10.0.2.2\tweb.example web probe\n") {
		t.Errorf("hosts of shop-web:\n%s", h)
	}
	m2, err := planner.Desire(parse(t, "name: h\nnetworks:\n  lan: {subnet: 10.9.0.0/24}\ncontainers:\n  a: {hostname: db.lab.example, networks: [lan]}\n"), &state.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if h := planner.Hosts(m2, "h-a"); !strings.HasSuffix(h, "ff02::2\tip6-allrouters\n10.9.0.2\tdb.lab.example db a\n") {
		t.Errorf("hosts of a, hostname db.lab.example:\n%s", h)
	}
	if h := planner.Hosts(m, "shop-tools"); !strings.Contains(h, "127.0.1.1\ttools\n") {
		t.Errorf("hosts of shop-tools:\n%s", h)
	}
	if rc := planner.ResolvConf("shop", nil); !strings.Contains(rc, "nameserver 127.0.0.11\noptions ndots:0\n") {
		t.Errorf("resolv.conf:\n%s", rc)
	}
	// A project whose containers have no namespace of their own needs no
	// resolver.
	m, _ = planner.Desire(parse(t, "name: h\ncontainers:\n  x: {network_mode: host}\n"), &state.Snapshot{})
	if planner.Records(m) != nil {
		t.Error("a host-only project gets records")
	}
	p := planOf(t, fake.New(nil), parse(t, "name: h\ncontainers:\n  x: {network_mode: host}\n"))
	if !p.Empty() {
		t.Errorf("a host-only project plans %v", p.Steps)
	}
}

// steps renders a plan's step lines.
func steps(p *planner.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.String())
	}
	return out
}

func TestResolverDriftIsRepaired(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, dnsFile)
	up(t, k, f)
	first := k.Dump()
	if !strings.Contains(first, "resolver shop pidfile=true alive=true") || !strings.Contains(first, "listening=[shop-api2 shop-tools shop-web]") {
		t.Fatalf("after up:\n%s", first)
	}

	// Killed by hand: plan starts it again, and only that.
	k.Processes.KillResolver("shop")
	if d := cmp.Diff([]string{"+ topo resolver start -p shop  # dns resolver"}, steps(planOf(t, k, f))); d != "" {
		t.Errorf("plan after the resolver died (-want +got):\n%s", d)
	}
	up(t, k, f)
	if d := cmp.Diff(first, k.Dump()); d != "" {
		t.Errorf("repaired resolver (-first +now):\n%s", d)
	}

	// A file edited by hand is changed back.
	path := names.NetnsFile("shop-api2", "resolv.conf")
	k.Apply(context.Background(), op.FileWrite{NS: "shop-api2", Path: path, Content: "nameserver 192.0.2.1\n"})
	if d := cmp.Diff([]string{"~ cat > " + path + "  # container api2"}, steps(planOf(t, k, f))); d != "" {
		t.Errorf("plan after editing resolv.conf (-want +got):\n%s", d)
	}
	up(t, k, f)

	// A namespace deleted and made again by hand: the resolver's sockets
	// are in the old one, so it reloads after the namespace is rebuilt.
	k.Apply(context.Background(), op.NetnsDel{NS: "shop-api2"})
	p := planOf(t, k, f)
	last := p.Steps[len(p.Steps)-1]
	if !testkit.Is[op.ResolverReload](last) {
		t.Errorf("plan after deleting shop-api2 ends with %s, want a reload:\n%s", last, strings.Join(steps(p), "\n"))
	}
	up(t, k, f)
	if d := cmp.Diff(first, k.Dump()); d != "" {
		t.Errorf("repaired namespace (-first +now):\n%s", d)
	}
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("plan after repairs: %v", steps(p))
	}

	// Down stops the resolver and removes every file.
	obs, _ := k.Observe(context.Background(), "shop")
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down("shop", obs, planner.Options{})); err != nil {
		t.Fatal(err)
	}
	if dump := k.Dump(); strings.Contains(dump, "file ") || strings.Contains(dump, "resolver ") {
		t.Errorf("down left DNS state:\n%s", dump)
	}
}
