package resolver

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/topolab/topo/resolver/records"
)

// thousandNames is 100 containers with a name and 9 aliases each.
func thousandNames() *records.Document {
	d := &records.Document{
		Namespaces: []records.Namespace{{Name: "ns", Networks: []string{"lan"}}},
		Networks:   []records.Network{{Name: "lan"}},
	}
	for i := range 100 {
		c := "c" + strconv.Itoa(i)
		m := records.Member{Container: c, Addr: netip.AddrFrom4([4]byte{10, 88, 0, byte(i + 2)}), Names: []string{c}}
		for j := range 9 {
			m.Names = append(m.Names, c+"-a"+strconv.Itoa(j))
		}
		d.Networks[0].Members = append(d.Networks[0].Members, m)
	}
	return d
}

// BenchmarkHandler measures one query through the handler, packed as the
// server would send it: the resolver's own work per query.
func BenchmarkHandler(b *testing.B) {
	var p atomic.Pointer[Store]
	p.Store(NewStore(thousandNames()))
	h := &Handler{NS: "ns", Store: &p}
	q := new(dns.Msg)
	q.SetQuestion("c42-a7.", dns.TypeA)
	raw, _ := q.Pack()
	w := udpWriter()
	b.ReportAllocs()
	for b.Loop() {
		req := new(dns.Msg)
		if err := req.Unpack(raw); err != nil {
			b.Fatal(err)
		}
		w.msgs, w.sizes = w.msgs[:0], w.sizes[:0]
		h.ServeDNS(w, req)
	}
}
