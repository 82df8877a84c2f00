package resolver

import (
	"context"
	"log"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// TTL of local answers, as Docker's embedded DNS gives them.
const TTL = 600

// maxUDPSize caps what an EDNS0 asker may ask for: larger UDP answers
// fragment, and RFC 9715 advises against them.
const maxUDPSize = 1232

// Upstream forwards a query to the resolvers outside. The handler owns the
// query it passes; the answer's ID is set by the handler.
type Upstream interface {
	Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// Handler answers the queries of one namespace. It reads the store through
// a shared pointer, so that a reload changes every namespace's records at
// once without touching its sockets.
type Handler struct {
	// NS is the namespace the handler's sockets are in: the asker.
	NS       string
	Store    *atomic.Pointer[Store]
	Upstream Upstream

	// forwards caps the queries upstream at once of every namespace,
	// nsForwards this one's (see maxForwards); nil has no cap.
	forwards, nsForwards *slots
	log                  *log.Logger
}

var _ dns.Handler = (*Handler)(nil)

// ServeDNS answers one query. It never panics on what a packet holds
// (FuzzHandler checks), and it answers every query but responses, which it
// drops so that two resolvers can never bounce a packet between them.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := h.Answer(context.Background(), req)
	if resp == nil {
		return
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		resp.Truncate(udpSize(req))
	}
	// A client gone before its answer is not the resolver's problem.
	_ = w.WriteMsg(resp)
}

// udpSize is the largest UDP answer req's sender accepts.
func udpSize(req *dns.Msg) int {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return min(size, maxUDPSize)
}

// Answer returns the reply to req, before any size limit, or nil when req
// deserves none.
func (h *Handler) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	if r, fwd := h.decide(req); !fwd {
		return r
	}
	if !h.takeForward() {
		return reply(req, dns.RcodeServerFailure)
	}
	return h.forwardTaken(ctx, req)
}

// takeForward takes a slot for a query upstream, or reports that the
// caps are reached; forwardTaken gives it back.
func (h *Handler) takeForward() bool {
	return takeBoth(h.forwards, h.nsForwards, h.NS, h.log)
}

// forwardTaken forwards req with the slot takeForward took, and gives it
// back.
func (h *Handler) forwardTaken(ctx context.Context, req *dns.Msg) *dns.Msg {
	defer h.nsForwards.give()
	defer h.forwards.give()
	return h.forward(ctx, req)
}

// decide answers req from the store, or says it must be forwarded. It
// never blocks.
func (h *Handler) decide(req *dns.Msg) (resp *dns.Msg, forward bool) {
	if req.Response {
		return nil, false
	}
	if req.Opcode != dns.OpcodeQuery {
		return reply(req, dns.RcodeNotImplemented), false
	}
	if len(req.Question) != 1 {
		return reply(req, dns.RcodeFormatError), false
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return reply(req, dns.RcodeBadVers), false
	}
	store := h.Store.Load()
	q := req.Question[0]
	if q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY {
		if r := h.local(store, req, q); r != nil {
			return r, false
		}
	}
	if !store.Forwards(h.NS) || h.Upstream == nil {
		// Docker's answer when there is nowhere to forward to.
		return reply(req, dns.RcodeServerFailure), false
	}
	return nil, true
}

// forward asks the upstreams on behalf of req.
func (h *Handler) forward(ctx context.Context, req *dns.Msg) *dns.Msg {
	resp, err := h.Upstream.Exchange(WithServers(ctx, h.Store.Load().Upstreams(h.NS)), req.Copy())
	if err != nil {
		resp = nil
	}
	return fromUpstream(req, resp)
}

// fromUpstream makes an upstream's answer to req the asker's: its ID, its
// spelling of the name, no EDNS0 unless it asked with it. Without an
// answer (nil) it is SERVFAIL.
func fromUpstream(req, resp *dns.Msg) *dns.Msg {
	if resp == nil {
		return reply(req, dns.RcodeServerFailure)
	}
	resp.Id = req.Id
	resp.Question = req.Question // keep the asker's spelling of the name
	if req.IsEdns0() == nil {
		dropOPT(resp)
	}
	return resp
}

// local answers from the store, or returns nil for a name it does not know.
func (h *Handler) local(store *Store, req *dns.Msg, q dns.Question) *dns.Msg {
	name := canonical(q.Name)
	if q.Qtype == dns.TypePTR {
		if addr, ok := reverseAddr(name); ok {
			target := store.Reverse(h.NS, addr)
			if target == "" {
				return nil
			}
			r := reply(req, dns.RcodeSuccess)
			r.Answer = append(r.Answer, &dns.PTR{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL},
				Ptr: target,
			})
			return r
		}
	}
	addrs, known := store.Lookup(h.NS, name, false)
	if !known {
		return nil
	}
	r := reply(req, dns.RcodeSuccess)
	// Round-robin: each query gets the holders in a new order. A name
	// without a record of the type asked has NOERROR, no answer.
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		for _, i := range rand.Perm(len(addrs)) {
			r.Answer = append(r.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL},
				A:   net.IP(addrs[i].AsSlice()),
			})
		}
	}
	if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
		addrs6, _ := store.Lookup(h.NS, name, true)
		for _, i := range rand.Perm(len(addrs6)) {
			r.Answer = append(r.Answer, &dns.AAAA{
				Hdr:  dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: TTL},
				AAAA: net.IP(addrs6[i].AsSlice()),
			})
		}
	}
	return r
}

// reply starts an answer to req with rcode, echoing EDNS0 if req used it.
func reply(req *dns.Msg, rcode int) *dns.Msg {
	r := new(dns.Msg)
	r.SetRcode(req, rcode)
	r.Authoritative = rcode == dns.RcodeSuccess
	r.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		// Pack sets the OPT's extended rcode bits (BADVERS) from Rcode.
		r.SetEdns0(maxUDPSize, opt.Do())
	}
	return r
}

func dropOPT(m *dns.Msg) {
	kept := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			kept = append(kept, rr)
		}
	}
	m.Extra = kept
}

// reverseAddr parses d.c.b.a.in-addr.arpa (canonical) into a.b.c.d.
func reverseAddr(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		return reverseAddr6(rest)
	}
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	parts[0], parts[1], parts[2], parts[3] = parts[3], parts[2], parts[1], parts[0]
	a, err := netip.ParseAddr(strings.Join(parts, "."))
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// Packet answers one UDP packet: the packed reply in out (nil when the
// packet deserves none), or, for a query that must go upstream, the
// unpacked query to forward, which the caller does with forwardTaken
// without holding up the next packet: Packet took its slot. Past the caps
// on queries upstream the reply is SERVFAIL.
func (h *Handler) Packet(in, out []byte) (answer []byte, forward *dns.Msg) {
	if b := h.fast(in, out); b != nil {
		return b, nil
	}
	req := new(dns.Msg)
	if req.Unpack(in) != nil {
		return nil, nil // not DNS: no answer, as miekg/dns's server
	}
	resp, fwd := h.decide(req)
	if fwd {
		if h.takeForward() {
			return nil, req
		}
		resp = reply(req, dns.RcodeServerFailure)
	}
	b, err := packUDP(req, resp, out)
	if err != nil {
		return nil, nil
	}
	return b, nil
}

// packUDP packs the UDP answer to req (nil when there is none).
func packUDP(req, resp *dns.Msg, buf []byte) ([]byte, error) {
	if resp == nil {
		return nil, nil
	}
	resp.Truncate(udpSize(req))
	return resp.PackBuffer(buf)
}

// reverseAddr6 reads the 32 nibbles of an ip6.arpa name, last first
// (RFC 3596): "a.0.0.0. … .2.4.d.f" is fd42:…::a.
func reverseAddr6(nibbles string) (netip.Addr, bool) {
	parts := strings.Split(nibbles, ".")
	if len(parts) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, p := range parts {
		if len(p) != 1 {
			return netip.Addr{}, false
		}
		v := strings.IndexByte("0123456789abcdef", p[0])
		if v < 0 {
			return netip.Addr{}, false
		}
		j := 31 - i // nibble index from the address's first
		if j%2 == 0 {
			b[j/2] |= byte(v) << 4
		} else {
			b[j/2] |= byte(v)
		}
	}
	return netip.AddrFrom16(b), true
}
