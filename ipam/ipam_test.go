package ipam

import (
	"net/netip"
	"testing"
)

func TestPickSubnet(t *testing.T) {
	p := netip.MustParsePrefix
	var all []netip.Prefix
	for i := 17; i <= 31; i++ {
		all = append(all, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	tests := []struct {
		name string
		used []netip.Prefix
		want string
	}{
		{"empty host", nil, "172.17.0.0/16"},
		{"first taken by a host route", []netip.Prefix{p("172.17.0.0/16")}, "172.18.0.0/16"},
		{"small overlap skips the block", []netip.Prefix{p("172.17.5.0/24"), p("172.18.0.1/32")}, "172.19.0.0/16"},
		{"supernet blocks many", []netip.Prefix{p("172.16.0.0/12")}, "192.168.0.0/20"},
		{"then /20 steps", append(append([]netip.Prefix{}, all...), p("192.168.0.0/20"), p("192.168.17.0/24")), "192.168.32.0/20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickSubnet(DefaultPools, tt.used)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("PickSubnet = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := PickSubnet(DefaultPools, []netip.Prefix{p("0.0.0.0/0")}); err == nil {
		t.Error("PickSubnet with everything used: no error")
	}
}

func TestAllocator(t *testing.T) {
	a := NewAllocator(netip.MustParsePrefix("172.30.0.0/29"))
	if !a.Reserve(netip.MustParseAddr("172.30.0.3")) {
		t.Fatal("reserve .3 refused")
	}
	if a.Reserve(netip.MustParseAddr("172.30.0.1")) {
		t.Error("reserve of the gateway accepted")
	}
	if a.Reserve(netip.MustParseAddr("10.0.0.1")) {
		t.Error("reserve outside the subnet accepted")
	}
	got := drain(a)
	want := "[172.30.0.2 172.30.0.4 172.30.0.5 172.30.0.6]"
	if s := fmtList(got); s != want {
		t.Errorf("allocated %s, want %s", s, want)
	}
	if g := Gateway(netip.MustParsePrefix("10.1.2.0/24")); g.String() != "10.1.2.1" {
		t.Errorf("Gateway = %s", g)
	}
	if b := Broadcast(netip.MustParsePrefix("10.1.2.0/23")); b.String() != "10.1.3.255" {
		t.Errorf("Broadcast = %s", b)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestSetGateway: a gateway elsewhere (a LAN's router) is taken and the
// first address is free for containers.
func TestSetGateway(t *testing.T) {
	a := NewAllocator(netip.MustParsePrefix("192.168.50.0/29"))
	a.SetGateway(netip.MustParseAddr("192.168.50.2"))
	got := drain(a)
	if s, want := fmtList(got), "[192.168.50.1 192.168.50.3 192.168.50.4 192.168.50.5 192.168.50.6]"; s != want {
		t.Errorf("allocated %s, want %s", s, want)
	}
}

// drain takes every address a has left.
func drain(a *Allocator) []string {
	var got []string
	for {
		addr, err := a.Next()
		if err != nil {
			return got
		}
		got = append(got, addr.String())
	}
}

// TestLast: the highest free address of the pool, then the next lower.
func TestLast(t *testing.T) {
	a := NewAllocator(netip.MustParsePrefix("192.168.50.0/24"))
	a.Limit(netip.MustParsePrefix("192.168.50.128/25"))
	a.Reserve(netip.MustParseAddr("192.168.50.254"))
	for _, want := range []string{"192.168.50.253", "192.168.50.252"} {
		if got, err := a.Last(); err != nil || got.String() != want {
			t.Errorf("Last = %v, %v; want %s", got, err, want)
		}
	}
}

// TestULA: a /48 of fd00::/8, the same for one machine ID, another for
// another; its /64s are picked in order, skipping those in use.
func TestULA(t *testing.T) {
	a, b := ULA("0123456789abcdef0123456789abcdef"), ULA("fedcba9876543210fedcba9876543210")
	fd := netip.MustParsePrefix("fd00::/8")
	if a.Bits() != 48 || !fd.Contains(a.Addr()) || a.Masked() != a || a != ULA("0123456789abcdef0123456789abcdef") || a == b {
		t.Errorf("ULA: %s and %s", a, b)
	}
	first := netip.PrefixFrom(a.Addr(), 64)
	got, err := PickSubnet(ULAPools("0123456789abcdef0123456789abcdef"), []netip.Prefix{first, netip.MustParsePrefix("10.0.0.0/8")})
	second, _ := nextBlock(first)
	if err != nil || got != second || got.Bits() != 64 || !a.Contains(got.Addr()) {
		t.Errorf("pick with the first /64 taken: %s (%v), want %s", got, err, second)
	}
	if last, ok := nextBlock(netip.MustParsePrefix("ffff:ffff:ffff:ffff::/64")); ok {
		t.Errorf("next block after the last: %s", last)
	}
	if next, _ := nextBlock(netip.MustParsePrefix("fd00:0:0:ffff::/64")); next != netip.MustParsePrefix("fd00:0:1::/64") {
		t.Errorf("next block carries: %s", next)
	}
}

// TestOverlayULA: an overlay's automatic IPv6 subnet is a /64 of
// fd00::/8 from project and network alone, pinned: hosts running other
// builds of topo must derive the same one.
func TestOverlayULA(t *testing.T) {
	got := OverlayULA("ov6", "mesh")
	if want := netip.MustParsePrefix("fd76:50a:e876:8e79::/64"); got != want {
		t.Errorf("OverlayULA(ov6, mesh) = %s, want %s", got, want)
	}
	if !netip.MustParsePrefix("fd00::/8").Contains(got.Addr()) || got.Masked() != got {
		t.Errorf("OverlayULA(ov6, mesh) = %s: not a /64 of fd00::/8", got)
	}
	if OverlayULA("ov6", "mesh2") == got || OverlayULA("ov7", "mesh") == got {
		t.Errorf("another network or project derives %s too", got)
	}
}

// TestAllocator6: an IPv6 subnet's addresses in order after the gateway,
// with no broadcast address taken.
func TestAllocator6(t *testing.T) {
	a := NewAllocator(netip.MustParsePrefix("fd42::/120"))
	if first, _ := a.Next(); first != netip.MustParseAddr("fd42::2") {
		t.Errorf("first address: %s", first)
	}
	if !a.Reserve(netip.MustParseAddr("fd42::ff")) {
		t.Error("the last address of an IPv6 subnet is a container's too")
	}
}
