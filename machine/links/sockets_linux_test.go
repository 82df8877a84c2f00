package links

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/sysctl"
	"github.com/topolab/topo/state"
)

// TestHostSockets reads the sandbox's sockets while it holds listeners of
// every kind a publish can collide with: TCP on an IPv4 address, on ::1,
// on :: for both families and on :: for IPv6 only, UDP bound and UDP
// connected, and a TCP connection whose port must not count. sock_diag
// and /proc must list the same sockets, and each must name this process.
func TestHostSockets(t *testing.T) {
	newKernel(t)
	listen := func(network, addr string) int {
		t.Helper()
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l.Addr().(*net.TCPAddr).Port
	}
	p4 := listen("tcp4", "127.0.0.1:0")
	p6 := listen("tcp6", "[::1]:0")
	pDual := listen("tcp", ":0")        // Go leaves :: open to IPv4
	pV6Only := listen("tcp6", "[::]:0") // Go sets IPV6_V6ONLY
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	pUDP := u.LocalAddr().(*net.UDPAddr).Port
	uc, err := net.Dial("udp4", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	pUDPConn := uc.LocalAddr().(*net.UDPAddr).Port
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p4)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// /proc cannot tell IPV6_V6ONLY: compare without it.
	noV6Only := func(ss []hostSocket) []hostSocket {
		out := slices.Clone(ss)
		for i := range out {
			out[i].V6Only = false
		}
		slices.SortFunc(out, func(a, b hostSocket) int { return int(a.inode) - int(b.inode) })
		return out
	}
	for _, tc := range []struct {
		proto    string
		protocol uint8
		files    []string
	}{
		{"tcp", unix.IPPROTO_TCP, []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"}},
		{"udp", unix.IPPROTO_UDP, []string{"/proc/self/net/udp", "/proc/self/net/udp6"}},
	} {
		diag, err := diagSockets(tc.protocol)
		if err != nil {
			t.Logf("no sock_diag for %s here (%v): observe reads /proc", tc.proto, err)
			continue
		}
		proc, err := procSockets(tc.proto, tc.files...)
		if err != nil {
			t.Fatal(err)
		}
		if d := gocmp.Diff(noV6Only(proc), noV6Only(diag), gocmp.AllowUnexported(hostSocket{})); d != "" {
			t.Errorf("%s sockets (-/proc +sock_diag):\n%s", tc.proto, d)
		}
	}

	hp, err := hostPorts(t)
	if err != nil {
		t.Fatal(err)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	me := strings.TrimSpace(string(comm))
	find := func(proto string, port int) *state.Socket {
		for i, s := range hp.Sockets {
			if s.Proto == proto && s.Port == port {
				return &hp.Sockets[i]
			}
		}
		return nil
	}
	for _, want := range []struct {
		proto string
		port  int
		addr  string
	}{
		{"tcp", p4, "127.0.0.1"}, {"tcp", p6, "::1"}, {"tcp", pDual, "::"}, {"tcp", pV6Only, "::"},
		{"udp", pUDP, "127.0.0.1"}, {"udp", pUDPConn, "127.0.0.1"},
	} {
		s := find(want.proto, want.port)
		if s == nil {
			t.Errorf("no %s socket on port %d in %+v", want.proto, want.port, hp.Sockets)
			continue
		}
		if s.Addr != want.addr || s.PID != os.Getpid() || s.Command != me {
			t.Errorf("%s socket on port %d = %+v, want address %s held by %s (pid %d)", want.proto, want.port, *s, want.addr, me, os.Getpid())
		}
	}
	if s := find("tcp", pDual); s != nil && s.V6Only {
		t.Errorf("the socket on :: open to IPv4 says V6Only: %+v", *s)
	}
	if _, err := diagSockets(unix.IPPROTO_TCP); err == nil {
		if s := find("tcp", pV6Only); s != nil && !s.V6Only {
			t.Errorf("the IPV6_V6ONLY socket does not say V6Only: %+v", *s)
		}
	}
	if s := find("tcp", c.LocalAddr().(*net.TCPAddr).Port); s != nil {
		t.Errorf("a connection's port counts as listening: %+v", *s)
	}
}

// TestReservedPorts: the sandbox's ip_local_reserved_ports, set here, is
// what observation reports.
func TestReservedPorts(t *testing.T) {
	newKernel(t)
	const key = "net.ipv4.ip_local_reserved_ports"
	old, ok, err := sysctl.Kernel{}.Get(key)
	if err != nil || !ok {
		t.Skipf("no %s here: %v", key, err)
	}
	write := func(v string) {
		t.Helper()
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_reserved_ports", []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("40000,40005-40007")
	t.Cleanup(func() { write(old) })
	hp, err := hostPorts(t)
	if err != nil {
		t.Fatal(err)
	}
	if d := gocmp.Diff([]state.PortRange{{Low: 40000, High: 40000}, {Low: 40005, High: 40007}}, hp.Reserved); d != "" {
		t.Errorf("reserved ports (-want +got):\n%s", d)
	}
	write("")
	if hp, _ = hostPorts(t); hp.Reserved != nil {
		t.Errorf("no reserved ports read as %+v", hp.Reserved)
	}
}

// hostPorts is the host's ports as the machine observes them.
func hostPorts(t *testing.T) (*state.HostPorts, error) {
	snap, err := newKernel(t).m.Observe(context.Background(), "x")
	if err != nil {
		return nil, err
	}
	return snap.Ports, nil
}
