package resolver

import (
	"errors"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/internal/sandbox"
)

// heldUpstream is a DNS server on 127.0.0.1 (UDP) that holds every query
// until release is closed, then answers it, and says on entered each time
// one arrives. The resolver reaches it through a Forwarder, as it reaches
// the host's nameservers.
type heldUpstream struct {
	addr    string
	entered chan string
	release chan struct{}
	mu      sync.Mutex
	held    []heldQuery
	pc      net.PacketConn
}

type heldQuery struct {
	from net.Addr
	q    *dns.Msg
}

func newHeldUpstream(t *testing.T) *heldUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	u := &heldUpstream{addr: pc.LocalAddr().String(), entered: make(chan string, 4*maxForwards), release: make(chan struct{}), pc: pc}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			u.entered <- q.Question[0].Name
			u.mu.Lock()
			select {
			case <-u.release:
				u.answer(heldQuery{from, q})
			default:
				u.held = append(u.held, heldQuery{from, q})
			}
			u.mu.Unlock()
		}
	}()
	return u
}

func (u *heldUpstream) answer(h heldQuery) {
	b, _ := aReply(h.q, "192.0.2.9", 1).Pack()
	u.pc.WriteTo(b, h.from)
}

// answerAll answers the queries held and, from now on, every query at once.
func (u *heldUpstream) answerAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	close(u.release)
	for _, h := range u.held {
		u.answer(h)
	}
	u.held = nil
}

// waitEntered waits until n more queries reached the upstream; the guard
// only ends a test that would otherwise hang.
func (u *heldUpstream) waitEntered(t *testing.T, n int) {
	t.Helper()
	guard := time.After(30 * time.Second)
	for i := range n {
		select {
		case <-u.entered:
		case <-guard:
			t.Fatalf("%d of %d queries reached the upstream", i, n)
		}
	}
}

// noneEntered fails if a query reached the upstream since the last wait.
func (u *heldUpstream) noneEntered(t *testing.T, what string) {
	t.Helper()
	select {
	case name := <-u.entered:
		t.Errorf("%s: %s reached the upstream", what, name)
	default:
	}
}

// dialIn connects to addr over network from inside the namespace at path.
func dialIn(t *testing.T, path, network, addr string) net.Conn {
	t.Helper()
	conn, err := sandbox.DialIn(path, network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if uc, ok := conn.(*net.UDPConn); ok {
		// Room for a thousand answers at once, past net.core.rmem_max.
		raw, _ := uc.SyscallConn()
		var serr error
		raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		})
		if serr != nil {
			t.Fatal(serr)
		}
	}
	return conn
}

// heldServer serves doc() in its namespaces, forwarding to a heldUpstream.
func heldServer(t *testing.T) (*Server, *heldUpstream) {
	t.Helper()
	sandbox.Require(t)
	addNamespaces(t, "shop-web", "shop-api2", "shop-db", "shop-lone")
	up := newHeldUpstream(t)
	s, err := NewServer(&Forwarder{Servers: []string{up.addr}, Timeout: time.Minute}, log.New(os.Stderr, "resolver: ", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, errs := s.Load(doc()); len(errs) != 1 { // shop-none has no namespace
		t.Fatal(errs)
	}
	return s, up
}

func send(t *testing.T, c *dns.Conn, id uint16, name string) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = id
	if err := c.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
}

// recv reads one answer; the deadline only ends a test that would hang.
func recv(t *testing.T, c *dns.Conn) *dns.Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r, err := c.ReadMsg()
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return r
}

// A flood of names that go upstream, with an upstream that answers
// nothing, holds at most maxForwardsPerNS queries of one namespace and
// maxForwards of all: past them the answer is SERVFAIL at once, local
// names are still answered, and every query held is answered when the
// upstream is.
func TestForwardsAreCapped(t *testing.T) {
	s, up := heldServer(t)
	web := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-web", "udp", Address)}
	api := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-api2", "udp", Address)}
	lone := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-lone", "udp", Address)}

	// flood sends n names to forward, in batches that the socket's
	// buffer holds, each once the last has reached the upstream.
	flood := func(c *dns.Conn, first, n int) {
		for i := 0; i < n; i += 64 {
			batch := min(64, n-i)
			for j := range batch {
				send(t, c, uint16(first+i+j), "f"+strconv.Itoa(first+i+j)+".example.")
			}
			up.waitEntered(t, batch)
		}
	}
	// One namespace fills its own cap; one more is refused.
	flood(web, 0, maxForwardsPerNS)
	send(t, web, 60000, "one-more.example.")
	if r := recv(t, web); r.Id != 60000 || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("past the namespace's cap: id %d %s, want 60000 SERVFAIL", r.Id, dns.RcodeToString[r.Rcode])
	}
	up.noneEntered(t, "past the namespace's cap")
	// Local names are answered meanwhile.
	send(t, web, 60001, "api.")
	if r := recv(t, web); r.Id != 60001 || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("local name during the flood: %v", r)
	}
	// Another namespace still forwards, up to the cap of all.
	flood(api, 10000, maxForwards-maxForwardsPerNS)
	send(t, lone, 60002, "other.example.")
	if r := recv(t, lone); r.Id != 60002 || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("past the cap of all: id %d %s, want 60002 SERVFAIL", r.Id, dns.RcodeToString[r.Rcode])
	}
	up.noneEntered(t, "past the cap of all")

	// The upstream answers: every query held gets its answer, and the
	// slots are free again.
	up.answerAll()
	for _, c := range []struct {
		conn *dns.Conn
		n    int
	}{{web, maxForwardsPerNS}, {api, maxForwards - maxForwardsPerNS}} {
		for range c.n {
			if r := recv(t, c.conn); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("held query answered %v", r)
			}
		}
	}
	if n := s.forwards.n.Load(); n != 0 {
		t.Errorf("%d slots still taken after the answers", n)
	}
	send(t, lone, 60003, "after.example.")
	up.waitEntered(t, 1)
}

// TCP connections past a namespace's cap are closed as soon as they are
// accepted, unanswered; those within it are served.
func TestTCPConnectionsAreCapped(t *testing.T) {
	s, up := heldServer(t)
	// Each connection holds a query upstream, so that none ends by itself.
	var conns []*dns.Conn
	for i := range maxTCPConnsPerNS {
		c := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-web", "tcp", Address)}
		send(t, c, uint16(i), "held"+strconv.Itoa(i)+".example.")
		conns = append(conns, c)
	}
	up.waitEntered(t, maxTCPConnsPerNS)
	extra := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-web", "tcp", Address)}
	send(t, extra, 9999, "web.") // a local name: answered at once if served
	extra.SetReadDeadline(time.Now().Add(30 * time.Second))
	if r, err := extra.ReadMsg(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("connection past the cap: answer %v, error %v; want it closed", r, err)
	}
	// Another namespace is served.
	other := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-api2", "tcp", Address)}
	send(t, other, 1, "web.")
	if r := recv(t, other); r.Rcode != dns.RcodeSuccess {
		t.Errorf("other namespace over TCP: %v", r)
	}
	// Once the held queries are answered and their connections closed, a
	// new connection is served.
	up.answerAll()
	for _, c := range conns {
		recv(t, c)
		c.Close()
	}
	for guard := time.Now(); s.tcpConns.n.Load() > 1; time.Sleep(time.Millisecond) { // other's is still open
		if time.Since(guard) > 30*time.Second {
			t.Fatalf("%d TCP connections still counted", s.tcpConns.n.Load())
		}
	}
	again := &dns.Conn{Conn: dialIn(t, "/run/netns/shop-web", "tcp", Address)}
	send(t, again, 2, "web.")
	if r := recv(t, again); r.Rcode != dns.RcodeSuccess {
		t.Errorf("after the held connections closed: %v", r)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}
