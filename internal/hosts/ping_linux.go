package hosts

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/netns"
)

// envPing makes the caller's binary the pinger of Host.Ping (PingMain).
const envPing = "TOPO_HOSTS_PING"

// Ping is an ICMP echo request from a named network namespace of a host
// (under its /run/netns) to an IPv4 address, with Size bytes of data
// (as ping -s; 56 when 0), so that the IP packet is Size+28 bytes. It
// goes with Don't Fragment set and is never fragmented on its way out
// (as ping -M do): a packet larger than a link's MTU on the way is not
// answered, and one larger than the namespace's own fails at once.
type Ping struct {
	From string     `json:"from"`
	To   netip.Addr `json:"to"`
	Size int        `json:"size,omitempty"`
}

// PingOverhead is what IPv4 and ICMP add to a Ping's data.
const PingOverhead = 20 + 8

func (p Ping) String() string {
	if p.Size != 0 {
		return fmt.Sprintf("%s -> %s (%d bytes of data)", p.From, p.To, p.Size)
	}
	return p.From + " -> " + p.To.String()
}

// Echo is what came of a Ping: the first reply's round trip, counted
// from the first request, how many requests were sent until then and
// which of them (1 for the first) the reply answered; or why none was
// answered.
type Echo struct {
	RTT   time.Duration `json:"rtt"`
	Sent  int           `json:"sent"`
	Reply int           `json:"reply,omitempty"`
	Err   string        `json:"err,omitempty"`
}

// resend is how long a ping waits for its reply before it sends its next
// request (ping waits a second; a slow reply counts here as ping's
// would, by the request it answers).
const resend = 200 * time.Millisecond

// Ping sends each ping's echo requests on the host until it is answered
// or timeout has passed, at most parallel at a time, and returns what
// came of each, in order. The requests are sent by one process on the
// host, the caller's own binary run again (which must call PingMain
// first), that opens a raw ICMP socket in each ping's namespace: a
// process of ping per request would cost hundreds of processes. The
// error is the pinger's own (it did not run); a ping that was never
// answered has its Echo's Err.
func (h *Host) Ping(pings []Ping, timeout time.Duration, parallel int) ([]Echo, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	in, err := json.Marshal(pingRequest{Pings: pings, Timeout: timeout, Parallel: parallel})
	if err != nil {
		return nil, err
	}
	cmd := h.Command(self)
	cmd.Env = append(os.Environ(), envPing+"=1")
	cmd.Stdin = strings.NewReader(string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("host %s: pinger: %w: %s", h.Name, err, strings.TrimSpace(stderr.String()))
	}
	var echoes []Echo
	if err := json.Unmarshal(out, &echoes); err != nil || len(echoes) != len(pings) {
		return nil, fmt.Errorf("host %s: pinger's answer %q: %v", h.Name, out, err)
	}
	return echoes, nil
}

type pingRequest struct {
	Pings    []Ping        `json:"pings"`
	Timeout  time.Duration `json:"timeout"`
	Parallel int           `json:"parallel"`
}

// PingMain runs the pinger of Host.Ping when the environment asks for it,
// and exits; otherwise it returns at once. Call it first in main, or in
// TestMain, of a binary that calls Host.Ping.
func PingMain() {
	if os.Getenv(envPing) != "1" {
		return
	}
	var req pingRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "pinger:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(pingAll(req)); err != nil {
		fmt.Fprintln(os.Stderr, "pinger:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// pingAll runs the pings, req.Parallel at a time. Each has an echo
// identifier of its own, so that replies to the pings of one namespace,
// which every raw ICMP socket of that namespace receives, go to their
// own ping.
func pingAll(req pingRequest) []Echo {
	echoes := make([]Echo, len(req.Pings))
	slots := make(chan struct{}, max(req.Parallel, 1))
	var wg sync.WaitGroup
	for i, p := range req.Pings {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			echoes[i] = ping(p, uint16(i), req.Timeout)
		}()
	}
	wg.Wait()
	return echoes
}

// ping sends p's echo requests, one each resend, until a reply from p.To
// with id comes back or timeout has passed.
func ping(p Ping, id uint16, timeout time.Duration) Echo {
	var e Echo
	fail := func(err error) Echo {
		e.Err = err.Error()
		return e
	}
	if !p.To.Is4() {
		return fail(fmt.Errorf("%s: IPv4 only", p))
	}
	// The socket is made in the namespace, and stays of it.
	fd, err := netns.Open(p.From)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", p, err))
	}
	defer fd.Close()
	c, err := rawICMP(fd)
	if err != nil {
		return fail(fmt.Errorf("%s: raw ICMP socket: %w", p, err))
	}
	defer c.Close()
	data := make([]byte, cmp.Or(p.Size, 56))
	copy(data, "topo hosts.Ping")
	to := &net.IPAddr{IP: p.To.AsSlice()}
	start := time.Now()
	deadline := start.Add(timeout)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		e.Sent++
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(id), Seq: e.Sent, Data: data}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return fail(err)
		}
		if _, err := c.WriteTo(b, to); err != nil {
			return fail(fmt.Errorf("%s: send: %w", p, err))
		}
		wait := time.Now().Add(resend)
		if wait.After(deadline) {
			wait = deadline
		}
		_ = c.SetReadDeadline(wait)
		for {
			n, from, err := c.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			} else if err != nil {
				return fail(fmt.Errorf("%s: receive: %w", p, err))
			}
			if a, ok := from.(*net.IPAddr); !ok || !a.IP.Equal(to.IP) {
				continue
			}
			reply, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if body, ok := reply.Body.(*icmp.Echo); ok && body.ID == int(id) && body.Seq >= 1 && body.Seq <= e.Sent {
				e.RTT, e.Reply = time.Since(start), body.Seq
				return e
			}
		}
	}
	return fail(fmt.Errorf("%s: no reply to %d echo requests in %s", p, e.Sent, timeout))
}

// rawICMP opens a raw ICMP socket in the namespace fd, whose packets
// carry Don't Fragment and are never fragmented here (IP_PMTUDISC_DO).
func rawICMP(ns vnetns.NsHandle) (net.PacketConn, error) {
	var s int
	err := netns.In(ns, func() (err error) {
		s, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(s), "icmp")
	defer f.Close()
	if err := unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
		return nil, fmt.Errorf("IP_MTU_DISCOVER: %w", err)
	}
	// A copy of the socket, in Go's poller (an IPConn, which strips
	// the IPv4 header from what it reads).
	return net.FilePacketConn(f)
}
