package resolver

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary packets to the handler the way the server
// does: raw bytes to Packet (the UDP path, with forwarding through a fake
// upstream), and, when they unpack, the message to ServeDNS (the TCP path).
// The handler must not panic; every answer must pack, carry the query's
// ID and fit the asker's UDP limit; and a plain query must still be
// answered afterwards.
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
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'e', 'b', 0, 0, 1, 0, 1})
	h := handler("shop-web", &fakeUpstream{})
	out := make([]byte, maxUDPSize)
	f.Fuzz(func(t *testing.T, packet []byte) {
		req := new(dns.Msg)
		unpacked := req.Unpack(packet) == nil

		if b := h.fast(packet, make([]byte, maxUDPSize)); b != nil {
			got := new(dns.Msg)
			if err := got.Unpack(b); err != nil {
				t.Fatalf("fast answer does not unpack: %v", err)
			}
			want, err := general(h, packet)
			if err != nil || want == nil {
				t.Fatalf("fast path answers what the general path does not: %v", err)
			}
			if d := sameAnswer(got, want); d != "" {
				t.Fatalf("fast path differs from general (-general +fast):\n%s", d)
			}
		}
		reply, fwd := h.Packet(packet, out)
		if fwd != nil {
			var err error
			if reply, err = packUDP(fwd, h.forward(context.Background(), fwd), out); err != nil {
				t.Fatalf("forwarded answer does not pack: %v", err)
			}
		}
		if reply != nil {
			if !unpacked {
				t.Fatal("answered a packet that is not DNS")
			}
			if len(reply) > udpSize(req) {
				t.Fatalf("UDP reply of %d bytes, limit %d", len(reply), udpSize(req))
			}
			r := new(dns.Msg)
			if err := r.Unpack(reply); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if r.Id != req.Id || !r.Response {
				t.Fatalf("reply id=%d response=%v to query id=%d", r.Id, r.Response, req.Id)
			}
		} else if unpacked && !req.Response {
			t.Fatalf("no reply to a query: %v", req)
		}

		if unpacked {
			w := &writer{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
			h.ServeDNS(w, req)
			if len(w.msgs) > 1 || (len(w.msgs) == 0 && !req.Response) {
				t.Fatalf("%d TCP replies to %v", len(w.msgs), req)
			}
		}

		// Still answering.
		q := new(dns.Msg)
		q.SetQuestion("www.", dns.TypeA)
		b, _ := q.Pack()
		reply, _ = h.Packet(b, out)
		r := new(dns.Msg)
		if reply == nil || r.Unpack(reply) != nil || len(r.Answer) != 1 {
			t.Fatalf("after the packet, www gets %v", r)
		}
	})
}
