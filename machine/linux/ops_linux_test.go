package linux_test

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/machine/linux"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// everyOp is a run that performs every kind of operation: it makes two
// containers on a bridge, changes each thing an operation changes, and
// removes it all again.
func everyOp() []op.Operation {
	const p = "ops"
	rt := names.DefaultRuntime
	mk := func(kind names.Kind, name string) names.Mark { return names.NewMark(p, kind, name) }
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	pfx := netip.MustParsePrefix
	gw := netip.MustParseAddr("10.88.0.1")
	gw6 := netip.MustParseAddr("fd00:88::1")
	ip := netip.MustParseAddr
	vx := op.VxlanAdd{Link: "vx-ops", Master: "br-ops", VNI: 4242, Local: ip("192.0.2.11"), Port: names.VXLANPort, MTU: 1450, Mark: mk(names.KindTunnel, "lan")}
	remote := op.NeighAdd{Link: "vx-ops", Addr: ip("10.88.0.7"), MAC: mac("02:42:0a:58:00:07")}
	remote6 := op.NeighAdd{Link: "vx-ops", Addr: ip("fd00:88::7"), MAC: remote.MAC}
	veth := op.VethAdd{Link: "veth-ops-a", Master: "br-ops", Peer: "eth0", PeerNS: "ops-a", MAC: mac("02:42:0a:58:00:02"), MTU: 1450, Mark: mk(names.KindEndpoint, "a/lan")}
	vethB := op.VethAdd{Link: "veth-ops-b", Master: "br-ops", Peer: "eth0", PeerNS: "ops-b", MAC: mac("02:42:0a:58:00:03"), Mark: mk(names.KindEndpoint, "b/lan")}
	p2p := op.VethAdd{NS: "ops-a", Link: "p2p0", LinkMAC: mac("02:42:0a:59:00:00"), Peer: "p2p1", PeerNS: "ops-b", MAC: mac("02:42:0a:59:00:01"), MTU: 9000,
		Mark: mk(names.KindLink, names.Link("a", "p2p0", "b", "p2p1"))}
	chain := testChain
	six := []firewall.Change{{Op: firewall.NewChain, Chain: chain}, {Op: firewall.Append, Chain: chain, Spec: "-s fd00:88::/64 -j RETURN"}}
	doc := string(records.Encode(&records.Document{Project: p, Namespaces: []records.Namespace{{Name: "ops-a", Containers: []string{"a"}, Networks: []string{"lan"}}},
		Networks: []records.Network{{Name: "lan", Members: []records.Member{{Container: "a", Addr: netip.MustParseAddr("10.88.0.2"), Names: []string{"a"}}}}}}))
	cniAdd := op.CNIAdd{Network: "ptp", Container: "a", NS: "ops-a", IfName: "eth5", Cache: rt.CNI(p),
		Config: `{"cniVersion":"1.0.0","name":"ptp","plugins":[{"type":"ptp","ipam":{"type":"host-local","dataDir":"` + rt.CNIIPAM(p) + `","ranges":[[{"subnet":"10.91.0.0/24"}]]}}]}`}
	return []op.Operation{
		op.FileWrite{Path: rt.SysctlRecord(names.IPForward), Content: "0\n"},
		op.Sysctl{Key: names.IPForward, Value: "1"},
		op.NetnsAdd{NS: "ops-a", Mark: mk(names.KindNamespace, "a")},
		op.NetnsAdd{NS: "ops-b", Mark: mk(names.KindNamespace, "b")},
		op.BridgeAdd{Link: "br-ops", MAC: mac("02:42:0a:58:00:01"), MTU: 1400, Mark: mk(names.KindNetwork, "lan")},
		op.LinkSetMAC{Link: "br-ops", MAC: mac("02:42:0a:58:00:09")},
		op.LinkSetMTU{Link: "br-ops", MTU: 1450},
		op.LinkDown{Link: "br-ops"},
		op.LinkUp{Link: "br-ops"},
		op.AddrAdd{Link: "br-ops", Addr: pfx("10.88.0.1/24")},
		// An overlay's VXLAN device on the bridge, with its entries.
		vx,
		op.FdbAdd{Link: "vx-ops", MAC: mac("00:00:00:00:00:00"), Dst: ip("192.0.2.12")},
		op.FdbAdd{Link: "vx-ops", MAC: mac("00:00:00:00:00:00"), Dst: ip("192.0.2.13")},
		op.FdbAdd{Link: "vx-ops", MAC: remote.MAC, Dst: ip("192.0.2.12")},
		remote,
		veth,
		vethB,
		// A macvlan of the bridge, in a container.
		op.MacvlanAdd{NS: "ops-b", Link: "eth1", Parent: "br-ops", Mode: "bridge", MAC: mac("02:42:0a:58:01:03"), Mark: mk(names.KindEndpoint, "b/mv")},
		// A link of its own, between two namespaces: no master.
		p2p,
		op.AddrAdd{NS: "ops-a", Link: "p2p0", Addr: pfx("10.89.0.0/31")},
		op.AddrAdd{NS: "ops-b", Link: "p2p1", Addr: pfx("10.89.0.1/31")},
		op.RouteAdd{NS: "ops-a", Dst: pfx("10.90.0.0/24"), Gateway: netip.MustParseAddr("10.89.0.1"), Metric: 7, Proto: names.RouteProto},
		op.QdiscSet{NS: "ops-a", Link: "p2p0", Imp: op.Impairment{Rate: 20e6}},
		op.QdiscSet{NS: "ops-a", Link: "p2p0", Imp: op.Impairment{Rate: 5e6}},
		op.FileWrite{Path: rt.NetnsSysctls(p, "ops-b"), Content: names.FormatSysctlRecord([]string{names.IPForward})},
		op.Sysctl{NS: "ops-b", Key: names.IPForward, Value: "1"},
		op.Hairpin{Link: "veth-ops-a", On: false},
		op.Hairpin{Link: "veth-ops-a", On: true},
		op.LinkSetMTU{NS: "ops-a", Link: "eth0", MTU: 1400},
		op.LinkSetMTU{NS: "ops-a", Link: "eth0", MTU: 1450},
		op.AddrAdd{NS: "ops-a", Link: "eth0", Addr: pfx("10.88.0.2/24")},
		op.AddrAdd{NS: "ops-b", Link: "eth0", Addr: pfx("10.88.0.3/24")},
		op.RouteAdd{NS: "ops-a", Dst: op.DefaultRoute, Gateway: gw},
		op.RouteDel{NS: "ops-a", Dst: op.DefaultRoute, Gateway: gw},
		op.RouteAdd{NS: "ops-a", Link: "eth0", Dst: op.DefaultRoute, Gateway: gw},
		// IPv6 beside it.
		op.AddrAdd{Link: "br-ops", Addr: pfx("fd00:88::1/64")},
		op.AddrAdd{NS: "ops-a", Link: "eth0", Addr: pfx("fd00:88::2/64")},
		// The remote container's IPv6 address, in neighbour discovery's table.
		remote6,
		op.RouteAdd{NS: "ops-a", Link: "eth0", Dst: op.DefaultRoute6, Gateway: gw6},
		op.FirewallBatch{Family: firewall.IPv6, Table: firewall.TableFilter, Changes: six},
		op.Sysctl{Key: names.RouteLocalnet("br-ops"), Value: "1"},
		op.FirewallBatch{Table: firewall.TableFilter, Changes: []firewall.Change{{Op: firewall.NewChain, Chain: chain}, {Op: firewall.Append, Chain: chain, Spec: "-j RETURN"}}},
		// A CNI attachment (Debian's ptp plugin), its hosts file, and
		// its DEL, which leaves nothing: the fake's addresses are not
		// the plugin's, and the file is written again below.
		cniAdd,
		op.HostsWrite{NS: "ops-a", Path: names.NetnsFile("ops-a", names.Hosts), Content: "127.0.0.1\tlocalhost\n",
			CNI: []op.CNIHostsLine{{Cache: cniAdd.Cache, Network: cniAdd.Network, ID: cniAdd.NS, IfName: cniAdd.IfName, Names: "a"}}},
		op.CNIDel(cniAdd),
		op.FileWrite{NS: "ops-a", Path: names.NetnsFile("ops-a", names.Hosts), Content: "127.0.0.1\tlocalhost\n"},
		op.FileWrite{NS: "ops-a", Path: names.NetnsFile("ops-a", names.ResolvConf), Content: "nameserver 127.0.0.11\n"},
		op.RecordsWrite{Project: p, Content: doc},
		op.ResolverStart{Project: p},
		op.ResolverReload{Project: p},
		op.UTSAdd{Path: rt.UTS(p, "ops-a"), Hostname: "web"},
		op.UTSSet{Path: rt.UTS(p, "ops-a"), Hostname: "a", Domainname: "lab.example"},
		op.ProcStart{NS: "ops-a", UTS: rt.UTS(p, "ops-a"), Argv: []string{"sleep", "3600"}, Log: rt.LogFile(p, "a"), PidFile: rt.PidFile(p, "a")},
		// Half way: everything stands.
		nil,
		op.ProcStop{NS: "ops-a", Argv: []string{"sleep", "3600"}, Log: rt.LogFile(p, "a"), PidFile: rt.PidFile(p, "a"), DropLog: true},
		op.UTSDel{Path: rt.UTS(p, "ops-a")},
		op.ResolverStop{Project: p},
		op.RecordsDel{Project: p},
		op.FileDel{NS: "ops-a", Path: names.NetnsFile("ops-a", names.Hosts)},
		op.FileDel{NS: "ops-a", Path: names.NetnsFile("ops-a", names.ResolvConf)},
		op.FirewallBatch{Table: firewall.TableFilter, Changes: []firewall.Change{{Op: firewall.Flush, Chain: chain, Flushed: []string{"-j RETURN"}}, {Op: firewall.DeleteChain, Chain: chain}}},
		op.Sysctl{Key: names.RouteLocalnet("br-ops"), Value: "0"},
		op.FirewallBatch{Family: firewall.IPv6, Table: firewall.TableFilter, Changes: firewall.Invert(six)},
		op.RouteDel{NS: "ops-a", Link: "eth0", Dst: op.DefaultRoute6, Gateway: gw6},
		op.AddrDel{NS: "ops-a", Link: "eth0", Addr: pfx("fd00:88::2/64")},
		op.RouteDel{NS: "ops-a", Link: "eth0", Dst: op.DefaultRoute, Gateway: gw},
		op.AddrDel{NS: "ops-a", Link: "eth0", Addr: pfx("10.88.0.2/24")},
		op.LinkDel{Link: "veth-ops-a", Mark: veth.Mark},
		// The rebuild an undo does, in one step.
		op.Seq{Steps: []op.Step{{Op: veth}, {Op: op.AddrAdd{NS: "ops-a", Link: "eth0", Addr: pfx("10.88.0.2/24")}}}},
		op.SysctlReset{NS: "ops-b", Key: names.IPForward},
		op.FileDel{Path: rt.NetnsSysctls(p, "ops-b")},
		op.QdiscDel{NS: "ops-a", Link: "p2p0"},
		op.RouteDel{NS: "ops-a", Dst: pfx("10.90.0.0/24"), Gateway: netip.MustParseAddr("10.89.0.1"), Metric: 7, Proto: names.RouteProto},
		op.LinkDel{NS: "ops-a", Link: "p2p0", Mark: p2p.Mark},
		op.FdbDel{Link: "vx-ops", MAC: mac("00:00:00:00:00:00"), Dst: ip("192.0.2.13")},
		op.NeighDel(remote),
		op.NeighDel(remote6),
		op.LinkDel{Link: "vx-ops", Mark: vx.Mark},
		op.NetnsDel{NS: "ops-b", Mark: mk(names.KindNamespace, "b")},
		op.LinkDel{Link: "br-ops", Mark: mk(names.KindNetwork, "lan")},
		op.NetnsDel{NS: "ops-a", Mark: mk(names.KindNamespace, "a")},
		op.Sysctl{Key: names.IPForward, Value: "0"},
		op.FileDel{Path: rt.SysctlRecord(names.IPForward)},
	}
}

// testChain is the chain the run's firewall batches make, in both
// families.
const testChain = names.ChainPrefix + "OPS-TEST"

// chainRules are the rules of chain in fw's filter table; nil when it has
// no such chain.
func chainRules(fw *state.Firewall, chain string) []string {
	c := fw.Table(firewall.TableFilter).Chain(chain)
	if c == nil {
		return nil
	}
	out := []string{}
	for _, r := range c.Rules {
		out = append(out, r.Spec)
	}
	return out
}

// TestEveryOperation performs every kind of operation on the real machine
// and on the fake, in the same order: each must succeed on both, and the
// two must observe the same, half way and at the end. An operation that
// no mechanism performs fails here, and so does one that the run leaves
// out.
func TestEveryOperation(t *testing.T) {
	sandbox.Require(t)
	ctx := context.Background()
	seen := map[string]bool{}
	for _, o := range everyOp() {
		if o != nil {
			seen[o.Name()] = true
			if s, ok := o.(op.Seq); ok {
				for _, p := range s.Steps {
					seen[p.Op.Name()] = true
				}
			}
		}
	}
	for _, name := range op.Registered() {
		if !seen[name] {
			t.Errorf("operation %s is not in the run", name)
		}
	}
	real, err := linux.New(ctx, linux.Options{Runtime: names.DefaultRuntime})
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(nil)
	compare := func(when string) {
		t.Helper()
		r, err := real.Observe(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		f, err := fk.Observe(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(normalize(f), normalize(r)); d != "" {
			t.Errorf("%s, the fake and the real machine differ (-fake +real):\n%s", when, d)
		}
		// Each family's batch went to its own tables.
		for _, fam := range []struct {
			name       string
			fake, real *state.Firewall
		}{{"iptables", f.Firewall, r.Firewall}, {"ip6tables", f.Firewall6, r.Firewall6}} {
			if d := cmp.Diff(chainRules(fam.fake, testChain), chainRules(fam.real, testChain)); d != "" {
				t.Errorf("%s, %s chain %s: the fake and the real machine differ (-fake +real):\n%s", when, fam.name, testChain, d)
			}
		}
	}
	for i, o := range everyOp() {
		if o == nil {
			compare("half way")
			continue
		}
		for _, m := range []machine.Machine{real, fk} {
			if err := m.Apply(ctx, o); err != nil {
				t.Fatalf("%d: %s on %T: %v", i, op.Headline(o), m, err)
			}
		}
	}
	compare("at the end")
}
