package resolver

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// general answers packet through miekg/dns only, as the fast path must.
func general(h *Handler, packet []byte) (*dns.Msg, error) {
	req := new(dns.Msg)
	if err := req.Unpack(packet); err != nil {
		return nil, err
	}
	resp, _ := h.decide(req)
	b, err := packUDP(req, resp, nil)
	if err != nil || b == nil {
		return nil, err
	}
	out := new(dns.Msg)
	return out, out.Unpack(b)
}

// sameAnswer reports how fast and general answers differ, answer order
// aside; "" when they do not.
func sameAnswer(fast, gen *dns.Msg) string {
	sortRR := func(m *dns.Msg) []string {
		var out []string
		for _, rr := range m.Answer {
			out = append(out, rr.String())
		}
		sort.Strings(out)
		return out
	}
	f, g := *fast, *gen
	fa, ga := sortRR(fast), sortRR(gen)
	f.Answer, g.Answer = nil, nil
	f.Compress, g.Compress = false, false
	return cmp.Diff(g.String(), f.String()) + cmp.Diff(ga, fa)
}

func TestFastPathMatchesGeneral(t *testing.T) {
	h := handler("shop-web", nil)
	out := make([]byte, maxUDPSize)
	var fastCount int
	for _, c := range []struct {
		name  string
		qtype uint16
		edns  uint16
		do    bool
		cd    bool
	}{
		{"web.", dns.TypeA, 0, false, false}, {"WeB.", dns.TypeA, 0, false, false}, {"api.", dns.TypeA, 1232, true, false},
		// Checking Disabled is copied to the answer (RFC 4035 §3.2.2).
		{"api.", dns.TypeA, 1232, true, true}, {"web.", dns.TypeA, 0, false, true},
		{"web.example.", dns.TypeA, 4096, false, false}, {"db.", dns.TypeA, 0, false, false}, {"www.", dns.TypeA, 100, false, false},
		// General path only: NAME.NETWORK, other types, unknown names.
		{"web.front.", dns.TypeA, 0, false, false}, {"web.", dns.TypeAAAA, 0, false, false}, {"nope.", dns.TypeA, 0, false, false},
	} {
		q := new(dns.Msg)
		q.SetQuestion(c.name, c.qtype)
		q.Id = 77
		q.CheckingDisabled = c.cd
		if c.edns > 0 {
			q.SetEdns0(c.edns, c.do)
		}
		packet, _ := q.Pack()
		b := h.fast(packet, out)
		if b == nil {
			continue
		}
		fastCount++
		got := new(dns.Msg)
		if err := got.Unpack(b); err != nil {
			t.Fatalf("%s: fast answer does not unpack: %v", c.name, err)
		}
		want, err := general(h, packet)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameAnswer(got, want); d != "" {
			t.Errorf("%s: fast path differs from general (-general +fast):\n%s", c.name, d)
		}
		if got.CheckingDisabled != c.cd {
			t.Errorf("%s: CD %v in the answer, asked with %v", c.name, got.CheckingDisabled, c.cd)
		}
	}
	if fastCount != 8 {
		t.Errorf("fast path answered %d queries, want 8", fastCount)
	}
}

// BenchmarkPacket is the work per UDP query of a name, between the
// socket's read and write.
func BenchmarkPacket(b *testing.B) {
	var h Handler
	h.NS = "ns"
	h.Store = handler("x", nil).Store
	h.Store.Store(NewStore(thousandNames()))
	q := new(dns.Msg)
	q.SetQuestion("c42-a7.", dns.TypeA)
	raw, _ := q.Pack()
	out := make([]byte, maxUDPSize)
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := h.Packet(raw, out); r == nil {
			b.Fatal("no answer")
		}
	}
}
