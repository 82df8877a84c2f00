package op_test

import (
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// one of each operation, every field set that it has.
func everyOp() []op.Operation {
	mk := names.NewMark("p", names.KindEndpoint, "a/lan")
	mac := net.HardwareAddr{0x02, 0x42, 10, 0, 0, 2}
	pfx := netip.MustParsePrefix("10.0.0.2/24")
	gw := netip.MustParseAddr("10.0.0.1")
	veth := op.VethAdd{NS: "", Link: "veth1", Master: "br1", Peer: "eth0", PeerNS: "p-a", MAC: mac, MTU: 1400, Mark: mk}
	return []op.Operation{
		op.NetnsAdd{NS: "p-a", Mark: names.NewMark("p", names.KindNamespace, "a")},
		op.NetnsDel{NS: "p-a", Mark: names.NewMark("p", names.KindNamespace, "a")},
		op.BridgeAdd{Link: "br1", MAC: mac, MTU: 9000, Mark: names.NewMark("p", names.KindNetwork, "lan")},
		veth,
		op.LinkDel{NS: "p-a", Link: "eth0", Mark: mk},
		op.LinkSetMAC{Link: "br1", MAC: mac},
		op.LinkSetMTU{NS: "p-a", Link: "eth0", MTU: 1280},
		op.Hairpin{Link: "veth1", On: true},
		op.LinkUp{NS: "p-a", Link: "eth0"},
		op.LinkDown{NS: "p-a", Link: "eth0"},
		op.AddrAdd{NS: "p-a", Link: "eth0", Addr: pfx},
		op.AddrDel{NS: "p-a", Link: "eth0", Addr: pfx},
		op.RouteAdd{NS: "p-a", Link: "eth0", Dst: op.DefaultRoute, Gateway: gw},
		op.RouteDel{NS: "p-a", Dst: netip.MustParsePrefix("10.9.0.0/16"), Gateway: gw},
		op.Sysctl{Key: names.IPForward, Value: "1"},
		op.FirewallBatch{Table: "nat", Changes: []firewall.Change{{Op: firewall.NewChain, Chain: "TOPO-X"}, {Op: firewall.Insert, Chain: "OUTPUT", Pos: 2, Spec: "-j TOPO-X"}}},
		op.FileWrite{NS: "p-a", Path: names.NetnsFile("p-a", names.Hosts), Content: "x\n"},
		op.FileDel{NS: "p-a", Path: names.NetnsFile("p-a", names.Hosts)},
		op.RecordsWrite{Project: "p", Content: "{}"},
		op.RecordsDel{Project: "p"},
		op.ResolverStart{Project: "p"},
		op.ResolverStop{Project: "p"},
		op.ResolverReload{Project: "p"},
		op.ProcStart{NS: "p-a", Argv: []string{"sh", "-c", "echo 'hi'"}, Log: "/run/topo/p/containers/a.log", PidFile: "/run/topo/p/containers/a.pid"},
		op.ProcStop{NS: "p-a", Argv: []string{"sleep", "1"}, Log: "/l", PidFile: "/p", PID: 42, DropLog: true},
		op.VethAdd{NS: "p-a", Link: "eth9", LinkMAC: mac, Peer: "eth9", PeerNS: "p-b", MAC: mac, MTU: 9000, Mark: names.NewMark("p", names.KindLink, names.Link("a", "eth9", "b", "eth9"))},
		op.RouteAdd{NS: "p-a", Dst: netip.MustParsePrefix("10.2.0.0/24"), Gateway: gw, Metric: 5, Proto: names.RouteProto},
		op.RouteDel{NS: "p-a", Link: "eth9", Dst: netip.MustParsePrefix("10.2.0.0/24"), Gateway: gw, Metric: 5, Proto: names.RouteProto},
		op.QdiscSet{NS: "p-a", Link: "eth9", Imp: op.Impairment{Rate: 20e6}},
		op.QdiscSet{NS: "p-a", Link: "eth9", Imp: op.Impairment{Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.5, Rate: 1e8}},
		op.QdiscDel{NS: "p-a", Link: "eth9"},
		op.SysctlReset{NS: "p-a", Key: names.IPForward},
		op.Sysctl{NS: "p-a", Key: names.IPForward, Value: "1"},
		op.Seq{Steps: []op.Step{{Action: op.Create, Ref: op.Endpoint("a/lan"), Op: veth}, {Action: op.Create, Ref: op.Endpoint("a/lan"), Op: op.AddrAdd{NS: "p-a", Link: "eth0", Addr: pfx}}}},
		op.MacvlanAdd{NS: "p-a", Link: "eth1", Parent: "eth9", Mode: "bridge", MAC: mac, MTU: 1400, Mark: mk},
		op.VxlanAdd{Link: "vx1", Master: "br1", VNI: 4242, Local: netip.MustParseAddr("192.0.2.11"), Port: 4789, MTU: 1450, Mark: names.NewMark("p", names.KindTunnel, "lan")},
		op.FdbAdd{Link: "vx1", MAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, Dst: netip.MustParseAddr("192.0.2.12")},
		op.FdbDel{Link: "vx1", MAC: mac, Dst: netip.MustParseAddr("192.0.2.12")},
		op.NeighAdd{Link: "vx1", Addr: netip.MustParseAddr("10.0.0.2"), MAC: mac},
		op.NeighDel{Link: "vx1", Addr: netip.MustParseAddr("10.0.0.2"), MAC: mac},
		op.CNIAdd{Network: "plug", Container: "a", NS: "p-a", IfName: "eth1", Config: `{"cniVersion":"1.0.0"}`, Cache: "/run/topo/p/cni"},
		op.CNIAdd{Network: "plug", Container: "a", NS: "p-a", IfName: "eth1", Config: `{"cniVersion":"1.0.0"}`, Cache: "/run/topo/p/cni",
			IPs: []netip.Addr{netip.MustParseAddr("10.88.0.7"), netip.MustParseAddr("fd88::7")}, MAC: mac},
		op.CNIDel{Network: "plug", Container: "a", NS: "p-a", IfName: "eth1", Config: `{"cniVersion":"1.0.0"}`, Cache: "/run/topo/p/cni"},
		op.HostsWrite{NS: "p-a", Path: "/etc/netns/p-a/hosts", Content: "127.0.0.1\tlocalhost\n",
			CNI: []op.CNIHostsLine{{Cache: "/run/topo/p/cni", Network: "plug", ID: "p-a", IfName: "eth1", Names: "a"}}},
		op.UTSAdd{Path: "/run/topo/p/uts/p-web", Hostname: "web", Domainname: "lab.example"},
		op.UTSSet{Path: "/run/topo/p/uts/p-web", Hostname: "www"},
		op.UTSDel{Path: "/run/topo/p/uts/p-web"},
	}
}

// TestWireRoundTrip: every operation, as a step with an undo, reads back
// from its JSON as it was, and every operation is among those tried.
func TestWireRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range everyOp() {
		seen[o.Name()] = true
		s := op.Step{Action: op.Change, Ref: op.Container("a"), Op: o, Undo: &op.Step{Action: op.Change, Ref: op.Host, Op: op.LinkUp{Link: "x"}}}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back op.Step
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v\n%s", o.Name(), err, b)
		}
		if !reflect.DeepEqual(s, back) {
			t.Errorf("%s does not read back as it was:\n%#v\n%#v\n%s", o.Name(), s, back, b)
		}
		if o.Command() == "" {
			t.Errorf("%s renders no command", o.Name())
		}
	}
	for _, name := range op.Registered() {
		if !seen[name] {
			t.Errorf("operation %s is not tried", name)
		}
	}
}

// TestCommands pins what some operations print: the commands a person
// would type, as plans show them.
func TestCommands(t *testing.T) {
	ops := everyOp()
	for i, want := range map[int]string{
		2:  "ip link add br1 address 02:42:0a:00:00:02 mtu 9000 type bridge",
		3:  "ip link add veth1 mtu 1400 master br1 type veth peer name eth0 address 02:42:0a:00:00:02 mtu 1400 netns p-a",
		6:  "ip -n p-a link set eth0 mtu 1280",
		12: "ip -n p-a route add default via 10.0.0.1 dev eth0",
		13: "ip -n p-a route del 10.9.0.0/16 via 10.0.0.1",
		23: `ip netns exec p-a sh -c 'echo '\''hi'\''' >>/run/topo/p/containers/a.log 2>&1 &`,
		24: "kill -TERM -- -42; rm -f /p /l",
		34: "ip link add link eth9 name eth1 address 02:42:0a:00:00:02 mtu 1400 netns p-a type macvlan mode bridge",
	} {
		if got := ops[i].Command(); got != want {
			t.Errorf("%s: %q, want %q", ops[i].Name(), got, want)
		}
	}
}

// TestUnknownOp: a journal naming an operation this topo does not know is
// an error, not a step that does nothing.
func TestUnknownOp(t *testing.T) {
	var s op.Step
	if err := json.Unmarshal([]byte(`{"action":"+","op":"tunnel-add","resource":"host"}`), &s); err == nil {
		t.Error("read an unknown op")
	}
}
