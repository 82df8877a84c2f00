package resolver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/topolab/topo/internal/sandbox"
)

// fakeServer is an upstream on 127.0.0.1, UDP and TCP on one random port,
// that answers with fn.
func fakeServer(t *testing.T, fn func(tcp bool, q *dns.Msg) *dns.Msg) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no free port for UDP and TCP at once")
	}
	for _, s := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { w.WriteMsg(fn(false, q)) })},
		{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { w.WriteMsg(fn(true, q)) })},
	} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func aReply(q *dns.Msg, ip string, n int) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	for i := range n {
		a := net.ParseIP(ip).To4()
		a[3] += byte(i)
		r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a})
	}
	return r
}

// testUpstreams starts the upstreams failover is tested against: dead,
// a port where nothing listens (the kernel says so at once); silent, a
// socket that never answers; refusing, a server that answers REFUSED;
// and good, which answers big.test. truncated over UDP and with 60
// records over TCP, and other names with 192.0.2.7, always with EDNS0.
func testUpstreams(t *testing.T) (dead, silent, refusing, good string) {
	t.Helper()
	closed, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	dead = closed.LocalAddr().String()
	closed.Close()
	quiet, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { quiet.Close() })
	refusing = fakeServer(t, func(_ bool, q *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		return r.SetRcode(q, dns.RcodeRefused)
	})
	good = fakeServer(t, func(tcp bool, q *dns.Msg) *dns.Msg {
		if q.Question[0].Name == "big.test." {
			if !tcp {
				r := aReply(q, "192.0.2.1", 0)
				r.Truncated = true
				return r
			}
			return aReply(q, "192.0.2.1", 60)
		}
		return aReply(q, "192.0.2.7", 1).SetEdns0(1232, false)
	})
	return dead, quiet.LocalAddr().String(), refusing, good
}

func TestForwarderFailsOver(t *testing.T) {
	sandbox.Require(t)
	dead, silent, refusing, good := testUpstreams(t)
	f := &Forwarder{Servers: []string{dead, silent, refusing, good}, Timeout: 300 * time.Millisecond}

	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeA)
	start := time.Now()
	r, err := f.Exchange(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("answer %v, want 192.0.2.7 from the fourth upstream", r.Answer)
	}
	// One timeout (the silent one), not more; generous for a loaded machine.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failover took %v", d)
	}

	// A truncated UDP answer is asked again over TCP.
	q.SetQuestion("big.test.", dns.TypeA)
	r, err = (&Forwarder{Servers: []string{good}, Timeout: time.Second}).Exchange(context.Background(), q)
	if err != nil || len(r.Answer) != 60 || r.Truncated {
		t.Errorf("big answer: %d records, tc=%v, err=%v; want 60 over TCP", len(r.Answer), r.Truncated, err)
	}

	// Only refusals: the last refusal is the answer.
	r, err = (&Forwarder{Servers: []string{refusing}, Timeout: time.Second}).Exchange(context.Background(), q)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("only refusing upstream: %v, %v", r, err)
	}
	// Nothing answers: an error, which the handler turns into SERVFAIL.
	if _, err := (&Forwarder{Servers: []string{dead}, Timeout: time.Second}).Exchange(context.Background(), q); err == nil {
		t.Error("a dead upstream gave no error")
	}
}

func TestForwarderRereadsResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(path, []byte("# comment\nsearch example\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\noptions ndots:1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n"), 0o644)
	f := &Forwarder{ResolvConf: path}
	got, err := f.upstreams()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"192.0.2.1:53", "[fe80::1%eth0]:53", "192.0.2.2:53"}, got); d != "" {
		t.Errorf("upstreams (-want +got):\n%s", d)
	}
	os.WriteFile(path, []byte("nameserver 198.51.100."+strconv.Itoa(9)+"\n"), 0o644)
	got, _ = f.upstreams()
	if d := cmp.Diff([]string{"198.51.100.9:53"}, got); d != "" {
		t.Errorf("after a change (-want +got):\n%s", d)
	}
	os.WriteFile(path, []byte("search only\n"), 0o644)
	q := new(dns.Msg)
	q.SetQuestion("x.", dns.TypeA)
	if _, err := f.Exchange(context.Background(), q); err == nil {
		t.Error("no nameserver, no error")
	}
}

// TestOwnUpstreams: a namespace with upstreams of its own (a container's
// dns:) has its other names asked there, through the Forwarder and the
// handler; the others keep the host's.
func TestOwnUpstreams(t *testing.T) {
	host := fakeServer(t, func(_ bool, q *dns.Msg) *dns.Msg { return aReply(q, "192.0.2.1", 1) })
	own := fakeServer(t, func(_ bool, q *dns.Msg) *dns.Msg { return aReply(q, "198.51.100.9", 1) })
	d := doc()
	d.Namespaces[1].Upstreams = []string{own} // shop-api2
	var p atomic.Pointer[Store]
	p.Store(NewStore(d))
	f := &Forwarder{Servers: []string{host}, Timeout: time.Second}
	for ns, want := range map[string]string{"shop-api2": "198.51.100.9", "shop-web": "192.0.2.1"} {
		h := &Handler{NS: ns, Store: &p, Upstream: f}
		q := new(dns.Msg)
		q.SetQuestion("elsewhere.test.", dns.TypeA)
		r := h.Answer(context.Background(), q)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s: elsewhere.test = %v, want %s from its upstream", ns, r.Answer, want)
		}
	}
}
