package resolver

import (
	"io"
	"log"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/resolver/records"
)

// listenAddr is the address a running proxy listens on.
func listenAddr(t *testing.T, p *proxies, px records.Proxy) netip.AddrPort {
	t.Helper()
	switch c := p.on[px].(type) {
	case *net.TCPListener:
		return c.Addr().(*net.TCPAddr).AddrPort()
	case *net.UDPConn:
		return c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	t.Fatalf("proxy %s is not running", px.Key)
	return netip.AddrPort{}
}

// udpEcho answers each datagram to ip (a random port) with "echo "
// and the datagram, until the test ends.
func udpEcho(t *testing.T, network string, ip net.IP) *net.UDPConn {
	t.Helper()
	echo, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteToUDPAddrPort(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	return echo
}

// TestProxies forwards TCP (both ways, each half closed on its own) and
// UDP over [::1] to servers on [::1], and stops what a load leaves out,
// keeping what it keeps; a port in use fails the load.
func TestProxies(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // to the client's half close
				_, _ = c.Write([]byte("got " + string(b)))
			}()
		}
	}()
	echo := udpEcho(t, "udp6", net.IPv6loopback)

	lo := netip.IPv6Loopback()
	tcp := records.Proxy{Key: "web/::1::80/tcp", Container: "web", Proto: "tcp", Listen: netip.AddrPortFrom(lo, 0), Target: ln.Addr().(*net.TCPAddr).AddrPort()}
	udp := records.Proxy{Key: "web/::1::53/udp", Container: "web", Proto: "udp", Listen: netip.AddrPortFrom(lo, 0), Target: echo.LocalAddr().(*net.UDPAddr).AddrPort()}
	p := newProxies(log.New(io.Discard, "", 0))
	defer p.Close()
	if errs := p.Load([]records.Proxy{tcp, udp}); len(errs) > 0 {
		t.Fatal(errs)
	}
	tcpAt, udpAt := listenAddr(t, p, tcp), listenAddr(t, p, udp)

	c, err := net.DialTCP("tcp6", nil, net.TCPAddrFromAddrPort(tcpAt))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello"))
	_ = c.CloseWrite()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "got hello" {
		t.Errorf("TCP through the proxy: %q, %v; want \"got hello\"", b, err)
	}
	c.Close()

	u, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(udpAt))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for _, msg := range []string{"one", "two"} {
		_, _ = u.Write([]byte(msg))
		if n, err := u.Read(buf); err != nil || string(buf[:n]) != "echo "+msg {
			t.Errorf("UDP through the proxy: %q, %v; want %q", buf[:n], err, "echo "+msg)
		}
	}

	// Taken away: its port closes; the other stays as it was.
	if errs := p.Load([]records.Proxy{udp}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if c, err := net.DialTCP("tcp6", nil, net.TCPAddrFromAddrPort(tcpAt)); err == nil {
		c.Close()
		t.Errorf("the proxy left out of the load still listens on %s", tcpAt)
	}
	if got := listenAddr(t, p, udp); got != udpAt {
		t.Errorf("the proxy kept moved from %s to %s", udpAt, got)
	}

	// A port in use fails the load, with the proxy named.
	busy := tcp
	busy.Listen = ln.Addr().(*net.TCPAddr).AddrPort()
	if errs := p.Load([]records.Proxy{udp, busy}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "web/::1::80/tcp") {
		t.Errorf("load of a proxy on a port in use: %v, want one error naming it", errs)
	}
}

// TestProxiesToIPv4: a proxy on [::1] forwards to an IPv4 address (a
// container whose network has no IPv6, as docker-proxy does), TCP and UDP.
func TestProxiesToIPv4(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("from " + c.LocalAddr().String()))
			c.Close()
		}
	}()
	echo := udpEcho(t, "udp4", net.IPv4(127, 0, 0, 1))
	lo := netip.IPv6Loopback()
	tcp := records.Proxy{Key: "web/::1::80/tcp", Container: "web", Proto: "tcp", Listen: netip.AddrPortFrom(lo, 0), Target: ln.Addr().(*net.TCPAddr).AddrPort()}
	udp := records.Proxy{Key: "web/::1::53/udp", Container: "web", Proto: "udp", Listen: netip.AddrPortFrom(lo, 0), Target: echo.LocalAddr().(*net.UDPAddr).AddrPort()}
	p := newProxies(log.New(io.Discard, "", 0))
	defer p.Close()
	if errs := p.Load([]records.Proxy{tcp, udp}); len(errs) > 0 {
		t.Fatal(errs)
	}
	c, err := net.DialTCP("tcp6", nil, net.TCPAddrFromAddrPort(listenAddr(t, p, tcp)))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "from "+ln.Addr().String() {
		t.Errorf("TCP from [::1] through the proxy: %q, %v; want the IPv4 server's %q", b, err, "from "+ln.Addr().String())
	}
	c.Close()
	u, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(listenAddr(t, p, udp)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	_, _ = u.Write([]byte("one"))
	if n, err := u.Read(buf); err != nil || string(buf[:n]) != "echo one" {
		t.Errorf("UDP from [::1] through the proxy to IPv4: %q, %v; want \"echo one\"", buf[:n], err)
	}
}
