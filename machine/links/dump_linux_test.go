package links

import (
	"cmp"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestDumpsReadAsTheLibrary checks topo's own dumps against the netlink
// library's, on a namespace holding what they must tell apart: links of
// several kinds with aliases and masters, a point-to-point address, an
// address on a down link, routes with and without a gateway, a multipath
// route, a blackhole route, and routes in other tables (which are left
// out); of both families, IPv6 addresses (the kernel's link-local and ::1
// among them) and routes as IPv4's.
func TestDumpsReadAsTheLibrary(t *testing.T) {
	const ns = "dumps"
	k := newKernel(t) // its cleanup removes the namespace
	run(t, "ip", "netns", "add", ns)
	for _, args := range [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "br0", "alias", "the bridge", "up"},
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"link", "set", "v0", "master", "br0", "up"},
		{"link", "set", "v0", "type", "bridge_slave", "hairpin", "on"},
		{"link", "add", "d2", "master", "br0", "type", "veth", "peer", "name", "d2p"},
		{"link", "set", "v1", "alias", "topo:x", "up"},
		{"link", "add", "d0", "type", "veth", "peer", "name", "d0p"},
		{"link", "set", "d0", "up"},
		{"link", "add", "d1", "type", "veth", "peer", "name", "d1p"},
		{"link", "set", "d1", "group", "7"},
		{"link", "set", "lo", "up"},
		{"addr", "add", "10.1.0.1/24", "dev", "br0"},
		{"addr", "add", "10.1.0.9/24", "dev", "br0"},
		{"addr", "add", "10.2.0.2/16", "dev", "v1"},
		{"addr", "add", "10.3.0.1", "peer", "10.3.0.2/32", "dev", "d0"},
		{"addr", "add", "10.4.0.1/8", "dev", "d1"},
		{"route", "add", "default", "via", "10.2.0.1"},
		{"route", "add", "192.168.7.0/24", "dev", "d0"},
		{"route", "add", "192.168.8.0/24", "nexthop", "via", "10.2.0.1", "nexthop", "via", "10.1.0.2"},
		{"route", "add", "blackhole", "192.168.9.0/24"},
		{"route", "add", "192.168.10.0/24", "via", "10.2.0.1", "table", "100"},
		{"route", "add", "192.168.11.0/24", "via", "10.2.0.1", "table", "1000"},
		{"addr", "add", "fd00:2::2/64", "dev", "v1", "nodad"},
		{"addr", "add", "fd00:3::1", "peer", "fd00:3::2/128", "dev", "d0", "nodad"},
		{"route", "add", "::/0", "via", "fd00:2::1"},
		{"route", "add", "fd00:7::/64", "dev", "d0"},
		{"route", "add", "fd00:8::/64", "via", "fd00:2::1", "table", "100"},
	} {
		run(t, "ip", append([]string{"-n", ns}, args...)...)
	}
	h, err := k.handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	links, err := dumpLinks(h.sock)
	if err != nil {
		t.Fatal(err)
	}
	libLinks, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var want []linkInfo
	hairpins := 0
	for _, l := range libLinks {
		a := l.Attrs()
		li := linkInfo{Index: a.Index, Name: a.Name, Kind: l.Type(), Alias: a.Alias, Master: a.MasterIndex, Flags: a.RawFlags, Group: a.Group, MTU: uint32(a.MTU)}
		copy(li.MAC[:], a.HardwareAddr)
		li.Link, li.LinkNetns = a.ParentIndex, a.NetNsID >= 0
		if a.MasterIndex != 0 {
			pi, err := h.LinkGetProtinfo(l)
			if err != nil {
				t.Fatal(err)
			}
			if li.Hairpin = pi.Hairpin; li.Hairpin {
				hairpins++
			}
		}
		want = append(want, li)
	}
	if hairpins != 1 {
		t.Errorf("the library reads %d ports in hairpin mode, want v0", hairpins)
	}
	if diff := gocmp.Diff(want, links); diff != "" {
		t.Errorf("links (-library +topo):\n%s", diff)
	}
	if len(links) != 10 {
		t.Errorf("read %d links, want lo, br0 and four veth pairs", len(links))
	}

	addrs, err := dumpAddrs(h.sock)
	if err != nil {
		t.Fatal(err)
	}
	libAddrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var wantAddrs []addrInfo
	for _, a := range libAddrs {
		wantAddrs = append(wantAddrs, addrInfo{Index: a.LinkIndex, CIDR: a.IPNet.String()})
	}
	if diff := gocmp.Diff(wantAddrs, addrs); diff != "" {
		t.Errorf("addresses (-library +topo):\n%s", diff)
	}
	for _, a := range []string{"10.3.0.1/32", "fd00:3::1/128"} {
		if !slices.Contains(addrs, addrInfo{Index: indexIn(links, "d0"), CIDR: a}) {
			t.Errorf("addresses %v: no %s, the point-to-point one, on d0", addrs, a)
		}
	}
	if !slices.Contains(addrs, addrInfo{Index: indexIn(links, "v1"), CIDR: "fd00:2::2/64"}) {
		t.Errorf("addresses %v: no fd00:2::2/64 on v1", addrs)
	}

	routes, err := dumpRoutes(h.sock)
	if err != nil {
		t.Fatal(err)
	}
	libRoutes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var wantRoutes []routeInfo
	for _, r := range libRoutes {
		wr := routeInfo{Dst: "default", OIF: r.LinkIndex, Metric: r.Priority, Proto: uint8(r.Protocol)}
		if r.Family == netlink.FAMILY_V6 {
			wr.Dst = "::/0"
			if wr.Metric == ip6DefaultMetric {
				wr.Metric = 0
			}
		}
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				wr.Dst = r.Dst.String()
			}
		}
		if r.Gw != nil {
			wr.Gateway = r.Gw.String()
		}
		wantRoutes = append(wantRoutes, wr)
	}
	byDst := func(a, b routeInfo) int { return cmp.Or(cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.Gateway, b.Gateway)) }
	slices.SortFunc(wantRoutes, byDst)
	slices.SortFunc(routes, byDst)
	if diff := gocmp.Diff(wantRoutes, routes); diff != "" {
		t.Errorf("routes (-library +topo):\n%s", diff)
	}
	for _, dst := range []string{"default", "192.168.8.0/24", "192.168.9.0/24", "::/0", "fd00:7::/64"} {
		if !slices.ContainsFunc(routes, func(r routeInfo) bool { return r.Dst == dst }) {
			t.Errorf("routes %v: none to %s", routes, dst)
		}
	}
	for _, r := range routes {
		if r.Dst == "192.168.10.0/24" || r.Dst == "192.168.11.0/24" {
			t.Errorf("route %v of another table read as the main table's", r)
		}
	}
}

func indexIn(links []linkInfo, name string) int {
	i := slices.IndexFunc(links, func(l linkInfo) bool { return l.Name == name })
	if i < 0 {
		return -1
	}
	return links[i].Index
}
