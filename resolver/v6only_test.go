package resolver

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/topolab/topo/resolver/records"
)

// TestIPv6OnlyMembers: on an IPv6-only network a member has an IPv6
// address alone: its name answers AAAA, A with NOERROR and no answer
// (the name exists), and its ip6.arpa name is a PTR; a document of such
// a member decodes, one with neither address does not.
func TestIPv6OnlyMembers(t *testing.T) {
	d := &records.Document{
		Project:    "six",
		Namespaces: []records.Namespace{{Name: "six-a", Containers: []string{"a"}, Networks: []string{"v6only"}}},
		Networks: []records.Network{{Name: "v6only", Members: []records.Member{
			{Container: "a", Addr6: netip.MustParseAddr("fd42:3::2"), Names: []string{"a"}},
			{Container: "b", Addr6: netip.MustParseAddr("fd42:3::3"), Names: []string{"b", "www"}},
		}}},
	}
	if _, err := records.Decode(records.Encode(d)); err != nil {
		t.Fatalf("decode an IPv6-only document: %v", err)
	}
	var p atomic.Pointer[Store]
	p.Store(NewStore(d))
	h := &Handler{NS: "six-a", Store: &p, Upstream: &fakeUpstream{}}
	for _, c := range []struct {
		q     string
		qtype uint16
		want  []string
	}{
		{"www.", dns.TypeAAAA, []string{"www.\t600\tIN\tAAAA\tfd42:3::3"}},
		{"www.", dns.TypeA, nil},
		{"b.v6only.", dns.TypeAAAA, []string{"b.v6only.\t600\tIN\tAAAA\tfd42:3::3"}},
		{"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.2.4.d.f.ip6.arpa.", dns.TypePTR, []string{"PTR b.v6only."}},
	} {
		q := new(dns.Msg)
		q.SetQuestion(c.q, c.qtype)
		w := udpWriter()
		h.ServeDNS(w, q)
		if len(w.msgs) != 1 || w.msgs[0].Rcode != dns.RcodeSuccess {
			t.Fatalf("%s %s: replies %v, want one NOERROR", dns.TypeToString[c.qtype], c.q, w.msgs)
		}
		if diff := cmp.Diff(c.want, answers(w.msgs[0])); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", dns.TypeToString[c.qtype], c.q, diff)
		}
	}

	d.Networks[0].Members[0].Addr6 = netip.Addr{}
	if _, err := records.Decode(records.Encode(d)); err == nil {
		t.Error("a member with no address decodes")
	}
}
