package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// relay forwards the queries of UDP askers to the upstreams from the
// loop's own goroutine, as dnsmasq does: a query upstream costs a send, a
// receive and a map entry. A goroutine and a socket per query, as the
// Forwarder does for TCP askers, cost more than twice the CPU, and under a
// flood those goroutines took the processor from the local answers
// (DNS-BENCHMARK.md). Only the loop's goroutine touches a relay; the rare
// answer that must be asked again over TCP gets a goroutine of its own.
//
// Queries go out from a pool of sockets per server, each connected to it
// (so that it listens to nothing else, and the kernel drops what others
// send), on a random port the kernel chose, and retired after relayUses
// queries; an answer counts only with the query's random ID and question:
// what a spoofer must guess is what it would be with a socket per query.
type relay struct {
	f       *Forwarder
	epfd    int
	socks   map[int32]*upSock    // by descriptor
	pool    map[string][]*upSock // by server: the sockets new queries use
	turn    int
	pending map[relayKey]*relayed
	// queue holds every query sent, in the order of its deadline: all
	// wait the same time, so that the order of sending is that order.
	queue []waiting
	buf   []byte
}

const (
	relaySockets = 16  // per server
	relayUses    = 256 // queries a socket sends before it is retired
)

type upSock struct {
	fd            int
	server        string
	uses, pending int
	retired       bool
}

type relayKey struct {
	fd int32
	id uint16
}

// relayed is one asker's query on its way through the upstreams.
type relayed struct {
	asker   *udpSock
	to      unix.Sockaddr
	req     *dns.Msg // as asked
	servers []string
	server  int // the index of the server asked
	key     relayKey
	addr    netip.AddrPort // the server asked, which the answer must come from
	// last is the last SERVFAIL or REFUSED, the answer when no server is left.
	last *dns.Msg
}

// waiting is a query sent and the time its wait for an answer ends.
type waiting struct {
	p        *relayed
	key      relayKey
	deadline time.Time
}

func newRelay(f *Forwarder, epfd int) *relay {
	return &relay{f: f, epfd: epfd, socks: map[int32]*upSock{}, pool: map[string][]*upSock{},
		pending: map[relayKey]*relayed{}, buf: make([]byte, 65535)}
}

// owns reports whether fd is one of the relay's upstream sockets.
func (r *relay) owns(fd int32) bool { return r.socks[fd] != nil }

// start sends req, from asker's client at to, to the first upstream. The
// caller took the query's forwarding slot; the relay gives it back with
// the answer.
func (r *relay) start(asker *udpSock, to unix.Sockaddr, req *dns.Msg) {
	p := &relayed{asker: asker, to: to, req: req, server: -1}
	servers, err := r.f.upstreams()
	if own := asker.h.Store.Load().Upstreams(asker.h.NS); len(own) > 0 {
		servers, err = own, nil
	}
	if err != nil || len(servers) == 0 {
		p.answer(nil)
		return
	}
	p.servers = servers
	r.next(p)
}

// next asks the next upstream, or answers when none is left.
func (r *relay) next(p *relayed) {
	for p.server+1 < len(p.servers) {
		p.server++
		if r.send(p) == nil {
			return
		}
	}
	p.answer(p.last)
}

func (r *relay) send(p *relayed) error {
	server := p.servers[p.server]
	ap, sa, family, err := serverAddr(server)
	if err != nil {
		return err
	}
	us, err := r.sock(server, sa, family)
	if err != nil {
		return err
	}
	key := relayKey{fd: int32(us.fd), id: uint16(rand.Uint32())}
	for r.pending[key] != nil {
		key.id = uint16(rand.Uint32())
	}
	q := *p.req // the asker's query with the relay's ID
	q.Id = key.id
	b, err := q.PackBuffer(r.buf)
	if err != nil {
		return err
	}
	if _, err := unix.Write(us.fd, b); err != nil {
		return err
	}
	p.key, p.addr = key, ap
	r.pending[key] = p
	r.queue = append(r.queue, waiting{p: p, key: key, deadline: time.Now().Add(r.f.timeout())})
	us.pending++
	if us.uses++; us.uses >= relayUses {
		r.retire(us)
	}
	return nil
}

// sock returns the next socket of server's pool, made when missing.
func (r *relay) sock(server string, sa unix.Sockaddr, family int) (*upSock, error) {
	pool := r.pool[server]
	if pool == nil {
		pool = make([]*upSock, relaySockets)
		r.pool[server] = pool
	}
	r.turn = (r.turn + 1) % relaySockets
	if us := pool[r.turn]; us != nil {
		return us, nil
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upstream socket: %w", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("upstream %s: %w", server, err)
	}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	us := &upSock{fd: fd, server: server}
	r.socks[int32(fd)] = us
	pool[r.turn] = us
	return us, nil
}

// retire takes us out of its pool; it closes when its last query ends.
func (r *relay) retire(us *upSock) {
	us.retired = true
	pool := r.pool[us.server]
	for i, s := range pool {
		if s == us {
			pool[i] = nil
		}
	}
	r.closeIfDone(us)
}

func (r *relay) closeIfDone(us *upSock) {
	if us.retired && us.pending == 0 {
		delete(r.socks, int32(us.fd))
		_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, us.fd, nil)
		unix.Close(us.fd)
	}
}

// clear ends p's wait for an answer on its socket.
func (r *relay) clear(p *relayed) {
	delete(r.pending, p.key)
	us := r.socks[p.key.fd]
	us.pending--
	r.closeIfDone(us)
}

// relayBurst bounds the upstream answers taken per wake-up of the loop,
// over all the sockets that have some: more wait for the next one (epoll
// reports them again), so that askers' sockets, and local answers, are
// served every few milliseconds however many answers arrive.
const relayBurst = 128

// receiveAll takes answers waiting on the upstream sockets fds.
func (r *relay) receiveAll(fds []int32) {
	if len(fds) == 0 {
		return
	}
	each := max(8, relayBurst/len(fds))
	for _, fd := range fds {
		r.receive(fd, each)
	}
}

// receive takes up to n answers waiting on the upstream socket fd.
func (r *relay) receive(fd int32, n int) {
	us := r.socks[fd]
	for range n {
		if us == nil || r.socks[fd] != us {
			return // retired and closed by the last answer
		}
		size, from, err := unix.Recvfrom(us.fd, r.buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.ECONNREFUSED) {
			// Nothing listens at the server's port (ICMP): its queries on
			// this socket go to the next server now, not at their timeout.
			var refused []*relayed
			for key, p := range r.pending {
				if key.fd == fd {
					refused = append(refused, p)
				}
			}
			for _, p := range refused {
				r.clear(p)
				r.next(p)
			}
			continue
		}
		if err != nil {
			return // EAGAIN: drained
		}
		if size < headerLen {
			continue
		}
		p := r.pending[relayKey{fd: fd, id: binary.BigEndian.Uint16(r.buf)}]
		if p == nil || !sameAddr(from, p.addr) {
			continue
		}
		resp := new(dns.Msg)
		if resp.Unpack(r.buf[:size]) != nil || !resp.Response || !sameQuestion(resp, p.req) {
			continue // not the answer: the timeout stands
		}
		r.clear(p)
		switch {
		case resp.Truncated:
			go p.overTCP(r.f)
		case resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused:
			p.last = resp
			r.next(p)
		default:
			p.answer(resp)
		}
	}
}

// wait is how long the loop may wait for events, in milliseconds, before
// the first deadline: -1 when none is pending.
func (r *relay) wait(now time.Time) int {
	if len(r.queue) == 0 {
		return -1
	}
	d := r.queue[0].deadline.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// expire asks the next upstream for every query whose wait ended.
func (r *relay) expire(now time.Time) {
	for len(r.queue) > 0 && !r.queue[0].deadline.After(now) {
		e := r.queue[0]
		r.queue[0] = waiting{}
		r.queue = r.queue[1:]
		if r.pending[e.key] == e.p {
			r.clear(e.p)
			r.next(e.p)
		}
	}
	if len(r.queue) == 0 {
		r.queue = nil // let the backing array go
	}
}

// close closes the upstream sockets; the loop has ended.
func (r *relay) close() {
	for _, us := range r.socks {
		unix.Close(us.fd)
	}
}

// overTCP asks p's server again over TCP, as Exchange does for a
// truncated answer, then the remaining servers as Exchange would.
func (p *relayed) overTCP(f *Forwarder) {
	ctx := context.Background()
	c := &dns.Client{Net: "tcp", Timeout: f.timeout()}
	resp, _, err := c.ExchangeContext(ctx, p.req.Copy(), p.servers[p.server])
	for i := p.server + 1; err != nil && i < len(p.servers); i++ {
		resp, err = exchange(ctx, p.req.Copy(), p.servers[i], f.timeout())
	}
	if err != nil {
		resp = nil
	}
	p.answer(resp)
}

// answer sends the asker the upstream's answer (SERVFAIL for nil), and
// gives back the query's forwarding slot.
func (p *relayed) answer(resp *dns.Msg) {
	h := p.asker.h
	resp = fromUpstream(p.req, resp)
	h.nsForwards.give()
	h.forwards.give()
	if b, err := packUDP(p.req, resp, nil); err == nil && b != nil {
		p.asker.send(b, p.to)
	}
}

// serverAddr parses an upstream as resolvconf.Nameservers writes it.
func serverAddr(s string) (netip.AddrPort, unix.Sockaddr, int, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, nil, 0, fmt.Errorf("upstream %q: %w", s, err)
	}
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		ap = netip.AddrPortFrom(a.Unmap(), ap.Port())
		return ap, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	if zone := ap.Addr().Zone(); zone != "" {
		if n, err := strconv.Atoi(zone); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else {
			return ap, nil, 0, fmt.Errorf("upstream %q: %w", s, err)
		}
	}
	return ap, sa, unix.AF_INET6, nil
}

// sameAddr reports whether a packet came from ap.
func sameAddr(from unix.Sockaddr, ap netip.AddrPort) bool {
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		return ap.Addr().Is4() && sa.Addr == ap.Addr().As4() && sa.Port == int(ap.Port())
	case *unix.SockaddrInet6:
		return ap.Addr().Is6() && sa.Addr == ap.Addr().As16() && sa.Port == int(ap.Port())
	}
	return false
}

// sameQuestion reports whether resp answers req's question.
func sameQuestion(resp, req *dns.Msg) bool {
	if len(resp.Question) != 1 {
		return false
	}
	a, b := resp.Question[0], req.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
