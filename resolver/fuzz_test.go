package resolver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary packets to the handler, as the server would
// after unpacking them: the handler must not panic, must answer each query
// with something that packs and fits the asker's UDP limit, and must answer
// a plain query correctly afterwards.
func FuzzHandler(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{{"web.", dns.TypeA, false}, {"api.", dns.TypeA, true}, {"3.1.0.10.in-addr.arpa.", dns.TypePTR, false}, {"web.front.", dns.TypeAAAA, true}, {"x.example.", dns.TypeTXT, false}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(4096, true)
		}
		b, _ := m.Pack()
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true)
	up := &fakeUpstream{}
	h := handler("shop-web", up)
	f.Fuzz(func(t *testing.T, packet []byte, udp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return // the server drops what does not unpack
		}
		w := &writer{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
		if udp {
			w = udpWriter()
		}
		h.ServeDNS(w, req)
		if len(w.msgs) > 1 {
			t.Fatalf("%d replies to one query", len(w.msgs))
		}
		if len(w.msgs) == 1 {
			r := w.msgs[0]
			if r.Id != req.Id || !r.Response {
				t.Fatalf("reply id=%d response=%v to query id=%d", r.Id, r.Response, req.Id)
			}
			if udp && w.sizes[0] > udpSize(req) {
				t.Fatalf("UDP reply of %d bytes, limit %d", w.sizes[0], udpSize(req))
			}
		} else if !req.Response {
			t.Fatalf("no reply to a query: %v", req)
		}
		// Still answering.
		q := new(dns.Msg)
		q.SetQuestion("www.", dns.TypeA)
		w = udpWriter()
		h.ServeDNS(w, q)
		if len(w.msgs) != 1 || len(w.msgs[0].Answer) != 1 {
			t.Fatalf("after the packet, www gets %v", w.msgs)
		}
	})
}
