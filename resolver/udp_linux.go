package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// udpLoop answers the UDP queries of every namespace from one thread
// blocked in epoll_wait, as dnsmasq does. Go's network poller would add a
// goroutine switch per wake-up and miekg/dns's server a goroutine and an
// IP_PKTINFO per query: more than the few microseconds a local answer
// takes (scripts/bench-dns measures it). Queries that go upstream are
// relayed from the same thread (relay) when the upstream is a Forwarder;
// another Upstream gets a goroutine per query.
type udpLoop struct {
	epfd, wake int
	mu         sync.Mutex // guards socks
	socks      map[int32]*udpSock
	done       chan struct{}
	relay      *relay // nil: a goroutine per query upstream
	// upstream collects the queries a drain found must go upstream, to
	// start once the asker's socket is let go.
	upstream []relayStart
}

type relayStart struct {
	to  unix.Sockaddr
	req *dns.Msg
}

type udpSock struct {
	fd int
	h  *Handler
	// mu is held, shared, while fd is used and, alone, to close it, so
	// that a socket is never closed (and its number reused) under a user.
	// Each socket has its own: the answers of a flood's forwarded queries
	// then never queue with the loop for one lock.
	mu     sync.RWMutex
	closed bool
}

// burst bounds the packets taken from one socket per wake-up, so that a
// busy namespace does not starve the others.
const burst = 64

func newUDPLoop(up Upstream) (*udpLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l := &udpLoop{epfd: epfd, wake: wake, socks: map[int32]*udpSock{}, done: make(chan struct{})}
	if f, ok := up.(*Forwarder); ok {
		l.relay = newRelay(f, epfd)
	}
	go l.run()
	return l, nil
}

// udpSocket opens a non-blocking UDP socket bound to addr, in the calling
// thread's namespace.
func udpSocket(addr netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind udp %s: %w", addr, err)
	}
	return fd, nil
}

// add serves fd with h; the loop owns fd from now on.
func (l *udpLoop) add(fd int, h *Handler) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll: %w", err)
	}
	l.socks[int32(fd)] = &udpSock{fd: fd, h: h}
	return nil
}

// remove stops serving fd and closes it.
func (l *udpLoop) remove(fd int) {
	l.mu.Lock()
	s := l.socks[int32(fd)]
	if s == nil {
		l.mu.Unlock()
		return
	}
	delete(l.socks, int32(fd))
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.mu.Unlock()
	s.close()
}

// send sends b to to on s, unless s is closed; a full socket buffer or an
// asker gone loses it, and the asker asks again.
func (s *udpSock) send(b []byte, to unix.Sockaddr) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		_ = unix.Sendto(s.fd, b, unix.MSG_DONTWAIT, to)
	}
}

func (s *udpSock) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	unix.Close(s.fd)
}

// close ends the loop and closes every socket.
func (l *udpLoop) close() {
	var one = [8]byte{1}
	unix.Write(l.wake, one[:])
	<-l.done
	if l.relay != nil {
		l.relay.close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, s := range l.socks {
		delete(l.socks, k)
		s.close()
	}
	unix.Close(l.epfd)
	unix.Close(l.wake)
}

func (l *udpLoop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 128)
	in := make([]byte, 4096) // far above any query; longer ones are cut and dropped
	out := make([]byte, maxUDPSize)
	var answers []int32 // upstream sockets with answers, served after the askers
	for {
		wait := -1
		if l.relay != nil {
			wait = l.relay.wait(time.Now())
		}
		n, err := unix.EpollWait(l.epfd, events, wait)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == l.wake {
				return
			}
			if l.relay != nil && l.relay.owns(ev.Fd) {
				answers = append(answers, ev.Fd)
				continue
			}
			l.mu.Lock()
			s := l.socks[ev.Fd]
			l.mu.Unlock()
			if s == nil {
				continue
			}
			s.mu.RLock()
			if !s.closed {
				l.drain(s, in, out)
			}
			s.mu.RUnlock()
			for i, u := range l.upstream {
				if l.relay != nil {
					l.relay.start(s, u.to, u.req)
				} else {
					go l.forward(s, u.to, u.req)
				}
				l.upstream[i] = relayStart{}
			}
			l.upstream = l.upstream[:0]
		}
		if l.relay != nil {
			l.relay.receiveAll(answers)
			answers = answers[:0]
			l.relay.expire(time.Now())
		}
	}
}

// drain answers what waits on s, up to burst packets.
func (l *udpLoop) drain(s *udpSock, in, out []byte) {
	for range burst {
		n, from, err := unix.Recvfrom(s.fd, in, unix.MSG_DONTWAIT)
		if err != nil {
			return // EAGAIN: drained
		}
		reply, fwd := s.h.Packet(in[:n], out)
		if fwd != nil {
			l.upstream = append(l.upstream, relayStart{from, fwd})
			continue
		}
		if reply != nil {
			// A full socket buffer or an asker gone: the asker retries.
			_ = unix.Sendto(s.fd, reply, unix.MSG_DONTWAIT, from)
		}
	}
}

// forward answers req from upstream, with the slot Packet took, and sends
// the answer on s, if s is still served by then.
func (l *udpLoop) forward(s *udpSock, to unix.Sockaddr, req *dns.Msg) {
	b, err := packUDP(req, s.h.forwardTaken(context.Background(), req), nil)
	if err == nil && b != nil {
		s.send(b, to)
	}
}
