package resolver

import (
	"log"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/topolab/topo/internal/sandbox"
)

// relayAsk serves doc() with f upstream and asks name of type A from
// shop-web over UDP, with EDNS0 when edns.
func relayAsk(t *testing.T, f *Forwarder, name string, edns bool) *dns.Msg {
	t.Helper()
	s, err := NewServer(f, log.New(os.Stderr, "resolver: ", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Load(doc())
	c := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-web", "udp", Address)}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = 4242
	if edns {
		q.SetEdns0(1232, false)
	}
	if err := c.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	r := recv(t, c)
	if r.Id != 4242 || len(r.Question) != 1 || r.Question[0].Name != name {
		t.Errorf("%s: answer has id %d and question %v", name, r.Id, r.Question)
	}
	if (r.IsEdns0() != nil) != edns {
		t.Errorf("%s: EDNS0 in the answer %v, asked with %v", name, r.IsEdns0() != nil, edns)
	}
	return r
}

// The relay, which forwards UDP askers' queries from the loop, behaves as
// the Forwarder: the next upstream after a timeout or a refusal, the last
// refusal when none answers, TCP for a truncated answer; and it takes an
// answer only from the server asked, for the question asked.
func TestRelay(t *testing.T) {
	sandbox.Require(t)
	addNamespaces(t, "shop-web", "shop-api2", "shop-db", "shop-lone")
	dead, silent, refusing, good := testUpstreams(t)
	wrongQuestion := fakeServer(t, func(_ bool, q *dns.Msg) *dns.Msg {
		r := aReply(q, "198.51.100.66", 1)
		r.Question[0].Name = "other.test."
		return r
	})
	// An answer from another port than the one asked.
	asked, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer asked.Close()
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := asked.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) == nil {
				b, _ := aReply(q, "198.51.100.77", 1).Pack()
				other.WriteTo(b, from)
			}
		}
	}()
	timeout := 300 * time.Millisecond

	r := relayAsk(t, &Forwarder{Servers: []string{dead, silent, refusing, good}, Timeout: timeout}, "ExAmple.TEST.", true)
	if got := aRecords(r); r.Rcode != dns.RcodeSuccess || len(got) != 1 || got[0] != "192.0.2.7" {
		t.Errorf("after a silent and a refusing upstream: %v", r)
	}
	r = relayAsk(t, &Forwarder{Servers: []string{asked.LocalAddr().String(), wrongQuestion, good}, Timeout: timeout}, "example.test.", false)
	if got := aRecords(r); len(got) != 1 || got[0] != "192.0.2.7" {
		t.Errorf("answers from another port and for another question were taken: %v", r)
	}
	r = relayAsk(t, &Forwarder{Servers: []string{refusing}, Timeout: timeout}, "example.test.", false)
	if r.Rcode != dns.RcodeRefused {
		t.Errorf("only a refusing upstream: %v, want REFUSED", r)
	}
	r = relayAsk(t, &Forwarder{Servers: []string{silent}, Timeout: timeout}, "example.test.", false)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("only a silent upstream: %v, want SERVFAIL", r)
	}
	empty := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(empty, []byte("search example\n"), 0o644)
	r = relayAsk(t, &Forwarder{ResolvConf: empty}, "example.test.", false)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("no nameserver: %v, want SERVFAIL", r)
	}
	// Truncated over UDP: asked again over TCP, then cut to the asker's
	// 512 bytes, with TC set so that it asks over TCP in turn.
	r = relayAsk(t, &Forwarder{Servers: []string{good}, Timeout: time.Second}, "big.test.", false)
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 60 {
		t.Errorf("big answer: tc=%v, %d records; want some of the 60 with TC", r.Truncated, len(r.Answer))
	}
}

// TestRelayIPv6Upstream: a nameserver of the host on IPv6 answers the
// relay, as one on IPv4 does.
func TestRelayIPv6Upstream(t *testing.T) {
	sandbox.Require(t)
	addNamespaces(t, "shop-web", "shop-api2", "shop-db", "shop-lone")
	up, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := up.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) == nil {
				b, _ := aReply(q, "198.51.100.6", 1).Pack()
				up.WriteTo(b, from)
			}
		}
	}()
	r := relayAsk(t, &Forwarder{Servers: []string{up.LocalAddr().String()}, Timeout: time.Second}, "example.test.", false)
	if got := aRecords(r); r.Rcode != dns.RcodeSuccess || len(got) != 1 || got[0] != "198.51.100.6" {
		t.Errorf("through an upstream on %s: %v", up.LocalAddr(), r)
	}
}
