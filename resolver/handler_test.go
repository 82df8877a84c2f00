package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/topolab/topo/resolver/records"
)

// doc is a small project: web on front (alias www, api) and back; api2 on
// front (alias api); db on back only (internal); lone on other; none has no
// network; probe shares web's namespace.
func doc() *records.Document {
	a := netip.MustParseAddr
	return &records.Document{
		Project: "shop",
		Namespaces: []records.Namespace{
			{Name: "shop-web", Containers: []string{"web", "probe"}, Networks: []string{"front", "back"}},
			{Name: "shop-api2", Containers: []string{"api2"}, Networks: []string{"front"}},
			{Name: "shop-db", Containers: []string{"db"}, Networks: []string{"back"}},
			{Name: "shop-lone", Containers: []string{"lone"}, Networks: []string{"other"}},
			{Name: "shop-none", Containers: []string{"none"}},
		},
		Networks: []records.Network{
			{Name: "front", Members: []records.Member{
				{Container: "web", Addr: a("10.0.1.2"), Names: []string{"web", "web.example", "www", "api"}},
				{Container: "api2", Addr: a("10.0.1.3"), Names: []string{"api2", "api"}},
			}},
			{Name: "back", Internal: true, Members: []records.Member{
				{Container: "web", Addr: a("10.0.2.2"), Names: []string{"web", "web.example"}},
				{Container: "db", Addr: a("10.0.2.3"), Names: []string{"db", "database"}},
			}},
			{Name: "other", Members: []records.Member{
				{Container: "lone", Addr: a("10.0.3.2"), Names: []string{"lone"}},
			}},
		},
	}
}

// fakeUpstream answers every A query with 192.0.2.1 and records the names
// it was asked.
type fakeUpstream struct {
	asked []string
	fail  bool
}

func (f *fakeUpstream) Exchange(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	f.asked = append(f.asked, q.Question[0].Name)
	if f.fail {
		return nil, errors.New("timeout")
	}
	r := new(dns.Msg)
	r.SetReply(q)
	r.Id = 0 // the handler must restore the asker's ID
	r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
	return r, nil
}

func handler(ns string, up Upstream) *Handler {
	var p atomic.Pointer[Store]
	p.Store(NewStore(doc()))
	return &Handler{NS: ns, Store: &p, Upstream: up}
}

// writer is a dns.ResponseWriter that keeps what is written.
type writer struct {
	remote net.Addr
	msgs   []*dns.Msg
	sizes  []int // packed, as sent
}

func (w *writer) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53} }
func (w *writer) RemoteAddr() net.Addr { return w.remote }
func (w *writer) WriteMsg(m *dns.Msg) error {
	// Pack as the real writer does, to catch messages that cannot be sent.
	b, err := m.Pack()
	if err != nil {
		return err
	}
	back := new(dns.Msg)
	if err := back.Unpack(b); err != nil {
		return err
	}
	w.msgs = append(w.msgs, back)
	w.sizes = append(w.sizes, len(b))
	return nil
}
func (w *writer) Write(b []byte) (int, error) { return len(b), nil }
func (w *writer) Close() error                { return nil }
func (w *writer) TsigStatus() error           { return nil }
func (w *writer) TsigTimersOnly(bool)         {}
func (w *writer) Hijack()                     {}
func (w *writer) Network() string             { return "udp" }

func udpWriter() *writer {
	return &writer{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
}

// answers renders an answer section as sorted "TYPE VALUE" strings.
func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, "A "+v.A.String())
		case *dns.PTR:
			out = append(out, "PTR "+v.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestHandlerAnswers(t *testing.T) {
	cases := []struct {
		name, ns, q string
		qtype       uint16
		rcode       int
		want        []string
		forwarded   bool
	}{
		{"name", "shop-api2", "web.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"alias", "shop-api2", "www.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"hostname", "shop-api2", "web.example.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"shared alias", "shop-api2", "api.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2", "A 10.0.1.3"}, false},
		{"case", "shop-api2", "WeB.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"name.network", "shop-api2", "web.front.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"alias.network", "shop-api2", "WWW.FRONT.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"network not shared", "shop-api2", "web.back.", dns.TypeA, dns.RcodeSuccess, []string{"A 192.0.2.1"}, true},
		{"self", "shop-api2", "api2.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.3"}, false},
		{"back side", "shop-db", "web.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.2.2"}, false},
		{"both sides", "shop-web", "web.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.1.2", "A 10.0.2.2"}, false},
		{"alias of one side", "shop-db", "www.", dns.TypeA, dns.RcodeServerFailure, nil, false},
		{"not shared, forwarded", "shop-lone", "web.", dns.TypeA, dns.RcodeSuccess, []string{"A 192.0.2.1"}, true},
		{"not shared, internal", "shop-db", "api2.", dns.TypeA, dns.RcodeServerFailure, nil, false},
		{"no network", "shop-none", "web.", dns.TypeA, dns.RcodeServerFailure, nil, false},
		{"unknown asker", "other-x", "web.", dns.TypeA, dns.RcodeServerFailure, nil, false},
		{"AAAA of a known name", "shop-api2", "web.", dns.TypeAAAA, dns.RcodeSuccess, nil, false},
		{"MX of a known name", "shop-api2", "api.", dns.TypeMX, dns.RcodeSuccess, nil, false},
		{"ANY", "shop-api2", "www.", dns.TypeANY, dns.RcodeSuccess, []string{"A 10.0.1.2"}, false},
		{"PTR", "shop-web", "3.1.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR api2.front."}, false},
		{"PTR back", "shop-db", "2.2.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR web.back."}, false},
		{"PTR not shared", "shop-lone", "2.1.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"A 192.0.2.1"}, true},
		{"unknown forwarded", "shop-api2", "example.org.", dns.TypeA, dns.RcodeSuccess, []string{"A 192.0.2.1"}, true},
		{"unknown, internal only", "shop-db", "example.org.", dns.TypeA, dns.RcodeServerFailure, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := &fakeUpstream{}
			h := handler(c.ns, up)
			q := new(dns.Msg)
			q.SetQuestion(c.q, c.qtype)
			q.Id = 4242
			w := udpWriter()
			h.ServeDNS(w, q)
			if len(w.msgs) != 1 {
				t.Fatalf("%d replies", len(w.msgs))
			}
			r := w.msgs[0]
			if r.Id != 4242 || !r.Response || r.Rcode != c.rcode {
				t.Errorf("reply id=%d response=%v rcode=%s, want id 4242, rcode %s", r.Id, r.Response, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			}
			if d := cmp.Diff(c.want, answers(r)); d != "" {
				t.Errorf("answers (-want +got):\n%s", d)
			}
			if got := len(up.asked) > 0; got != c.forwarded {
				t.Errorf("forwarded = %v, want %v", got, c.forwarded)
			}
			for _, rr := range r.Answer {
				if rr.Header().Name != c.q {
					t.Errorf("owner %q, want the question's spelling %q", rr.Header().Name, c.q)
				}
			}
		})
	}
}

func TestHandlerUpstreamDown(t *testing.T) {
	h := handler("shop-api2", &fakeUpstream{fail: true})
	q := new(dns.Msg)
	q.SetQuestion("example.org.", dns.TypeA)
	w := udpWriter()
	h.ServeDNS(w, q)
	if r := w.msgs[0]; r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func TestHandlerShuffles(t *testing.T) {
	h := handler("shop-api2", nil)
	firsts := map[string]int{}
	for range 200 {
		q := new(dns.Msg)
		q.SetQuestion("api.", dns.TypeA)
		w := udpWriter()
		h.ServeDNS(w, q)
		firsts[w.msgs[0].Answer[0].(*dns.A).A.String()]++
	}
	// Each order has probability 1/2; 200 queries all in one order is
	// 2^-199.
	if len(firsts) != 2 {
		t.Errorf("first answers over 200 queries: %v, want both holders", firsts)
	}
}

func TestHandlerRefusesOddQueries(t *testing.T) {
	h := handler("shop-api2", &fakeUpstream{})
	// A response is dropped, never answered.
	resp := new(dns.Msg)
	resp.SetQuestion("web.", dns.TypeA)
	resp.Response = true
	w := udpWriter()
	h.ServeDNS(w, resp)
	if len(w.msgs) != 0 {
		t.Errorf("answered a response: %v", w.msgs[0])
	}
	notify := new(dns.Msg)
	notify.SetNotify("web.")
	h.ServeDNS(w, notify)
	two := new(dns.Msg)
	two.SetQuestion("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	h.ServeDNS(w, two)
	none := new(dns.Msg)
	none.Id = 7
	h.ServeDNS(w, none)
	edns1 := new(dns.Msg)
	edns1.SetQuestion("web.", dns.TypeA)
	edns1.SetEdns0(1232, false)
	edns1.IsEdns0().SetVersion(1)
	h.ServeDNS(w, edns1)
	var got []int
	for _, m := range w.msgs {
		got = append(got, m.Rcode)
	}
	if d := cmp.Diff([]int{dns.RcodeNotImplemented, dns.RcodeFormatError, dns.RcodeFormatError, dns.RcodeBadVers}, got); d != "" {
		t.Errorf("rcodes (-want +got):\n%s", d)
	}
}

// manyHolders is a document where 100 containers share the alias "pool".
func manyHolders() *records.Document {
	d := &records.Document{
		Namespaces: []records.Namespace{{Name: "ns", Networks: []string{"n"}}},
		Networks:   []records.Network{{Name: "n"}},
	}
	for i := range 100 {
		d.Networks[0].Members = append(d.Networks[0].Members, records.Member{
			Container: "c" + strings.Repeat("x", i%5), Addr: netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(2 + i%250)}), Names: []string{"pool"},
		})
	}
	return d
}

func TestHandlerTruncates(t *testing.T) {
	var p atomic.Pointer[Store]
	p.Store(NewStore(manyHolders()))
	h := &Handler{NS: "ns", Store: &p}
	ask := func(w *writer, edns uint16) (*dns.Msg, int) {
		q := new(dns.Msg)
		q.SetQuestion("pool.", dns.TypeA)
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		h.ServeDNS(w, q)
		return w.msgs[len(w.msgs)-1], w.sizes[len(w.sizes)-1]
	}
	plain, n := ask(udpWriter(), 0)
	if !plain.Truncated || n > 512 || len(plain.Answer) == 0 {
		t.Errorf("UDP without EDNS0: tc=%v, %d bytes, %d answers; want TC and at most 512 bytes", plain.Truncated, n, len(plain.Answer))
	}
	big, n := ask(udpWriter(), 4096)
	if !big.Truncated || n > maxUDPSize || len(big.Answer) <= len(plain.Answer) || big.IsEdns0() == nil {
		t.Errorf("UDP with EDNS0 4096: tc=%v, %d bytes, %d answers, opt=%v; want TC, at most %d bytes, more answers than %d, an OPT", big.Truncated, n, len(big.Answer), big.IsEdns0() != nil, maxUDPSize, len(plain.Answer))
	}
	tcp, _ := ask(&writer{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}, 0)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Errorf("TCP: tc=%v, %d answers; want all 100", tcp.Truncated, len(tcp.Answer))
	}
}

func TestStoreReverseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"4.3.2.1.in-addr.arpa": "1.2.3.4", "1.2.3.in-addr.arpa": "", "x.3.2.1.in-addr.arpa": "", "4.3.2.1.in-addr.arpa.x": "",
	} {
		a, ok := reverseAddr(in)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != want {
			t.Errorf("reverseAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
