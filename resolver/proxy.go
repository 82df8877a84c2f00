package resolver

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/topolab/topo/resolver/records"
)

// The resolver process also forwards the publishes on [::1]
// (records.Proxy), which no DNAT can make: it listens on the host's
// loopback and connects to the container, as Docker's docker-proxy: to
// its IPv6 address, or to its IPv4 one when its network has no IPv6
// (docker-proxy's IPv6-to-IPv4). It runs in the host's namespace, where
// its listeners are.

// Proxy bounds: how long a UDP client's flow lives idle (docker-proxy's
// is 90 s), how many flows one publish holds at once, and how long a
// connection to the container may take to open.
const (
	udpFlowIdle = 90 * time.Second
	maxUDPFlows = 1024
	dialTimeout = 5 * time.Second
	maxDatagram = 65535
)

// proxies are the running proxies, by the document's proxy entry.
type proxies struct {
	log *log.Logger
	mu  sync.Mutex
	on  map[records.Proxy]io.Closer
}

func newProxies(logger *log.Logger) *proxies {
	return &proxies{log: logger, on: map[records.Proxy]io.Closer{}}
}

// Load runs the proxies of want: it starts those not running and stops
// those want no longer has; one that runs already is left alone, with
// its connections. It returns a problem per proxy it could not start
// (its address in use, say), which fails the load.
func (p *proxies) Load(want []records.Proxy) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[records.Proxy]bool{}
	for _, px := range want {
		keep[px] = true
	}
	for px, c := range p.on {
		if !keep[px] {
			_ = c.Close()
			delete(p.on, px)
		}
	}
	var errs []error
	for _, px := range want {
		if p.on[px] != nil {
			continue
		}
		c, err := p.start(px)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy of port %s (%s %s to %s): %w", px.Key, px.Proto, px.Listen, px.Target, err))
			continue
		}
		p.on[px] = c
	}
	return errs
}

// Close stops every proxy.
func (p *proxies) Close() { p.Load(nil) }

func (p *proxies) start(px records.Proxy) (io.Closer, error) {
	if px.Proto == "udp" {
		conn, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(px.Listen))
		if err != nil {
			return nil, err
		}
		go p.serveUDP(conn, px.Target)
		return conn, nil
	}
	ln, err := net.ListenTCP("tcp6", net.TCPAddrFromAddrPort(px.Listen))
	if err != nil {
		return nil, err
	}
	go p.serveTCP(ln, px.Target)
	return ln, nil
}

// serveTCP accepts until the listener is closed; each connection is
// spliced to one of its own to target, each way until its end closes.
func (p *proxies) serveTCP(ln *net.TCPListener, target netip.AddrPort) {
	for {
		c, err := ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			p.log.Printf("proxy %s: accept: %v", ln.Addr(), err)
			time.Sleep(10 * time.Millisecond) // out of descriptors, say: not a busy loop
			continue
		}
		go p.spliceTCP(c, target)
	}
}

func (p *proxies) spliceTCP(c *net.TCPConn, target netip.AddrPort) {
	defer c.Close()
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.Dial("tcp", target.String())
	if err != nil {
		p.log.Printf("proxy %s: connect to %s: %v", c.LocalAddr(), target, err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	half := func(dst, src *net.TCPConn) {
		_, _ = io.Copy(dst, src)
		_ = dst.CloseWrite() // the other way may go on
		done <- struct{}{}
	}
	go half(up.(*net.TCPConn), c)
	go half(c, up.(*net.TCPConn))
	<-done
	<-done
}

// serveUDP forwards each client's datagrams to target from a socket of
// the client's own (a flow), and the answers back, until the flow is
// idle for udpFlowIdle or the listener is closed.
func (p *proxies) serveUDP(conn *net.UDPConn, target netip.AddrPort) {
	var mu sync.Mutex
	flows := map[netip.AddrPort]*net.UDPConn{}
	defer func() {
		mu.Lock()
		for _, f := range flows {
			_ = f.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		mu.Lock()
		f := flows[from]
		if f == nil && len(flows) < maxUDPFlows {
			if f, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target)); err != nil {
				p.log.Printf("proxy %s: to %s: %v", conn.LocalAddr(), target, err)
			} else {
				flows[from] = f
				go func() {
					p.answerUDP(conn, f, from)
					mu.Lock()
					delete(flows, from)
					mu.Unlock()
					_ = f.Close()
				}()
			}
		}
		mu.Unlock()
		if f == nil {
			continue // too many flows, or none could open: dropped, as UDP may be
		}
		_ = f.SetReadDeadline(time.Now().Add(udpFlowIdle))
		_, _ = f.Write(buf[:n])
	}
}

// answerUDP sends what target answers a flow back to its client, until
// the flow has been idle long enough (its read deadline) or is closed.
func (p *proxies) answerUDP(conn, f *net.UDPConn, client netip.AddrPort) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := f.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && !ne.Timeout() && !errors.Is(err, net.ErrClosed) {
				continue // ICMP unreachable of one datagram: the flow goes on
			}
			return
		}
		_ = f.SetReadDeadline(time.Now().Add(udpFlowIdle))
		if _, err := conn.WriteToUDPAddrPort(buf[:n], client); errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
