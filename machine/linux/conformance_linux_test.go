package linux_test

import (
	"context"
	"net/netip"
	"os/exec"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/machine/linux"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// The same scenarios run on the Fake and on the real kernel, and what each
// observes afterwards must be the same: this keeps the fake honest, and so
// every planner and applier test that runs on it.
var scenarios = []struct {
	name  string
	files []string // brought up in turn, then the project goes down
	// setup makes the host's links the files need (a macvlan's parent, an
	// external bridge) in the sandbox, and host gives them to the fake.
	setup string
	host  *state.Snapshot
}{
	{"one network", []string{`
name: conf
networks:
  lan: {subnet: 10.77.0.0/24}
containers:
  a: {networks: [lan]}
  b: {networks: [lan]}
`}, "", nil},
	{"changes", []string{`
name: conf
networks:
  old: {}
  lan: {subnet: 10.77.0.0/24}
  inner: {internal: true}
containers:
  gone: {networks: [old, lan]}
  kept: {networks: [lan, inner]}
  moved: {networks: [lan, old]}
  quiet: {network_mode: none}
`, `
name: conf
networks:
  lan: {subnet: 10.77.0.0/24}
  inner: {internal: true}
containers:
  kept: {networks: [inner, lan]}
  moved: {networks: [lan]}
  new: {networks: [inner]}
  quiet: {networks: [lan]}
  probe: {network_mode: "container:kept"}
`}, "", nil},
	{"drivers", []string{`
name: conf
networks:
  lan:
    driver: macvlan
    driver_opts: {parent: conflan0, host_link: true}
    subnet: 192.168.78.0/24
    ip_range: 192.168.78.64/26
  lab: {external: true, name: conf-lab}
containers:
  a: {networks: [lan, lab]}
  b: {networks: [lab]}
`, `
name: conf
networks:
  lan:
    driver: macvlan
    driver_opts: {parent: conflan0, macvlan_mode: private}
    subnet: 192.168.78.0/24
  lab: {external: true, name: conf-lab}
containers:
  a: {networks: [lab, lan]}
  b: {networks: [lan]}
`},
		`ip link add conf-lab type bridge; ip addr add 10.78.0.1/24 dev conf-lab; ip link set conf-lab up
ip link add conflan0 type veth peer name conflan1; ip link set conflan0 up`,
		&state.Snapshot{Host: state.Namespace{Links: []state.Link{
			{Name: "conf-lab", Kind: "bridge", Up: true, MTU: 1500, Addrs: []string{"10.78.0.1/24"}},
			{Name: "conflan0", Kind: "veth", Up: true, MTU: 1500},
		}}}},
	{"labs", []string{`
name: conf
networks:
  lan: {subnet: 10.77.0.0/24}
containers:
  h: {networks: {lan: {interface_name: lan0, mac_address: "02:00:00:00:77:01"}}, routes: [{to: 10.78.0.0/24, via: 10.77.0.3}]}
  r1:
    networks: {lan: {ipv4_address: 10.77.0.3}}
    sysctls: {net.ipv4.ip_forward: 1}
    routes: [{to: 10.78.0.0/24, via: 10.79.0.1, metric: 3}]
  r2: {network_mode: none, sysctls: {net.ipv4.ip_forward: 1}}
links:
  - endpoints:
      - {container: r1, interface: p0, address: 10.79.0.0/31}
      - {container: r2, interface: p0, address: 10.79.0.1/31, mac: "02:00:00:00:79:01"}
    mtu: 9000
    impairment: {rate: 20mbit}
`, `
name: conf
networks:
  lan: {subnet: 10.77.0.0/24}
containers:
  h: {networks: {lan: {interface_name: lan0}}, routes: [{to: 10.78.0.0/24, via: 10.77.0.3, metric: 1}]}
  r1:
    networks: {lan: {ipv4_address: 10.77.0.3}}
    routes: [{to: 10.78.0.0/24, via: 10.79.0.1}]
  r2: {network_mode: none, sysctls: {net.ipv4.ip_forward: 1}}
links:
  - endpoints:
      - {container: r1, interface: p0, address: 10.79.0.0/31}
      - {container: r2, interface: p0, address: 10.79.0.1/31, mac: "02:00:00:00:79:02"}
    mtu: 1400
    impairment: {rate: 5mbit}
  - endpoints: ["h:p9", "r2:p9"]
`}, "", nil},
	{"dual stack", []string{`
name: conf
networks:
  lan: {subnet: [10.77.0.0/24, "fd77::/64"]}
  inner: {internal: true, subnet: [10.78.0.0/24, "fd78::/64"]}
containers:
  a: {networks: [lan, inner], ports: ["8080:80", "[::]::443"]}
  b: {networks: [lan]}
`, `
name: conf
networks:
  lan: {subnet: 10.77.0.0/24}
  inner: {internal: true, subnet: [10.78.0.0/24, "fd78::/64"]}
containers:
  a: {networks: [inner, lan]}
  b: {networks: [lan]}
`}, "", nil},
	{"ipv6 only", []string{`
name: conf
networks:
  lan: {enable_ipv4: false, subnet: "fd77::/64"}
  inner: {enable_ipv4: false, internal: true, subnet: "fd78::/64"}
  dual: {subnet: [10.79.0.0/24, "fd79::/64"]}
containers:
  a: {networks: [lan, inner], ports: ["8080:80", "[::1]:8081:80", "[::1]::53/udp"]}
  b: {networks: [lan, dual]}
`, `
name: conf
networks:
  lan: {subnet: [10.77.0.0/24, "fd77::/64"]}
  inner: {enable_ipv4: false, internal: true, subnet: "fd78::/64"}
  dual: {enable_ipv4: false, subnet: "fd79::/64"}
containers:
  a: {networks: [lan, inner], ports: ["8080:80"]}
  b: {networks: [lan, dual]}
`}, "", nil},
}

func TestFakeMatchesRealKernel(t *testing.T) {
	sandbox.Require(t)
	real, err := linux.New(context.Background(), linux.Options{Runtime: names.DefaultRuntime})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.setup != "" {
				if out, err := exec.Command("sh", "-c", sc.setup).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", sc.setup, err, out)
				}
				t.Cleanup(func() { _ = exec.Command("sh", "-c", "ip link del conf-lab; ip link del conflan0").Run() })
			}
			fk := fake.New(sc.host)
			for i, src := range sc.files {
				f, err := spec.Parse("/conf/topo.yaml", []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				r := converge(t, real, f)
				k := converge(t, fk, f)
				if d := cmp.Diff(k, r); d != "" {
					t.Errorf("file %d: fake and real kernels differ (-fake +real):\n%s", i, d)
				}
			}
			down := func(k machine.Machine) *state.Snapshot {
				obs, _ := k.Observe(context.Background(), "conf")
				if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down("conf", obs, planner.Options{})); err != nil {
					t.Fatal(err)
				}
				after, _ := k.Observe(context.Background(), "conf")
				return normalize(after)
			}
			if d := cmp.Diff(down(fk), down(real)); d != "" {
				t.Errorf("after down (-fake +real):\n%s", d)
			}
		})
	}
}

// converge plans and applies f, checks that a second plan is empty, and
// returns what the kernel then shows of the project.
func converge(t *testing.T, k machine.Machine, f *spec.File) *state.Snapshot {
	t.Helper()
	ctx := context.Background()
	obs, err := k.Observe(ctx, f.Project)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Machine: k}).Apply(ctx, p); err != nil {
		t.Fatalf("%T: %v", k, err)
	}
	obs, _ = k.Observe(ctx, f.Project)
	if again, _, err := planner.Up(f, obs, planner.Options{}); err != nil || !again.Empty() {
		t.Fatalf("%T: second plan not empty (%v):\n%v", k, err, again.Steps)
	}
	return normalize(obs)
}

// normalize keeps what topo owns and manages: marked links and namespaces,
// and default routes (the kernel adds and removes subnet routes itself).
func normalize(s *state.Snapshot) *state.Snapshot {
	out := &state.Snapshot{}
	for _, l := range s.Host.Links {
		if _, ok := names.ParseMark(l.Alias); ok {
			out.Host.Links = append(out.Host.Links, ownAddrs(l))
		}
	}
	for _, ns := range s.Namespaces {
		if ns.Mark == "" {
			continue
		}
		n := state.Namespace{Name: ns.Name, Mark: ns.Mark, Sysctls: ns.Sysctls, SysctlsBefore: ns.SysctlsBefore}
		for _, l := range ns.Links {
			l = ownAddrs(l)
			if mk, _ := names.ParseMark(l.Alias); mk.Kind == names.KindLink && len(l.Addrs) == 0 {
				l.MAC = "" // the kernel's pick, at random: an end without address has no MAC of topo's
			}
			n.Links = append(n.Links, l)
		}
		for _, r := range ns.Routes {
			if r.Dst == "default" || r.Dst == "::/0" || r.Topo {
				n.Routes = append(n.Routes, r)
			}
		}
		out.Namespaces = append(out.Namespaces, n)
	}
	sort.Slice(out.Namespaces, func(i, j int) bool { return out.Namespaces[i].Name < out.Namespaces[j].Name })
	// The DNS files and resolver, but for the resolver's pid.
	out.Files = s.Files
	if s.Resolver != nil {
		r := *s.Resolver
		r.PID = 0
		out.Resolver = &r
	}
	return out
}

// ownAddrs is l without the IPv6 addresses the kernel makes itself, as
// a link comes up (link-local ones, a bridge's once it has a port) or
// with lo (::1), which the fake does not model.
func ownAddrs(l state.Link) state.Link {
	var kept []string
	for _, a := range l.Addrs {
		if p, err := netip.ParsePrefix(a); err == nil && (p.Addr().IsLinkLocalUnicast() || p.Addr() == netip.IPv6Loopback()) {
			continue
		}
		kept = append(kept, a)
	}
	l.Addrs = kept
	return l
}
