package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The test binary is also the traffic agent of the isolation tests: run
// with TOPO_E2E_AGENT set, inside a namespace, it serves or probes instead
// of testing. One probing process per namespace runs every probe of that
// namespace at once, where a shell and socat per probe would cost hundreds
// of processes.
const envAgent = "TOPO_E2E_AGENT"

// agentBin is the test binary, which the agent runs as.
var agentBin string

// agentMain runs the agent when the environment asks for it, and exits;
// otherwise it sets agentBin.
func agentMain() {
	var err error
	switch os.Getenv(envAgent) {
	case "":
		if agentBin, err = os.Executable(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		return
	case "serve":
		err = agentServe(os.Args[1], os.Args[2])
	case "probe":
		err = agentProbe(os.Stdin, os.Stdout)
	case "sink":
		err = agentSink(os.Args[1])
	case "blast":
		err = agentBlast(os.Args[1], os.Args[2])
	default:
		err = fmt.Errorf("unknown agent mode %q", os.Getenv(envAgent))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// agentServe answers name on TCP port (every address, IPv6 too) and UDP
// port (every address but link-local ones, IPv6 too), says "ready" on stdout once both listen,
// then "got LINE" for each datagram (its first line), so that one that
// arrives is seen even when its answer is lost; it ends when stdin
// closes: when the test ends, or dies.
func agentServe(name, port string) error {
	tl, err := net.Listen("tcp", ":"+port) // IPv6 too, as most servers
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(name + "\n"))
			_ = c.Close()
		}
	}()
	// UDP on each address, not on 0.0.0.0: an answer must come from the
	// address asked, which a socket bound to all takes from the route back.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLinkLocalUnicast() {
			continue // a link-local address needs its zone
		}
		network := "udp6"
		if ip.IP.To4() != nil {
			network = "udp4"
		}
		ul, err := net.ListenPacket(network, net.JoinHostPort(ip.IP.String(), port))
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 64)
			for {
				n, from, err := ul.ReadFrom(buf)
				if err != nil {
					return
				}
				line, _, _ := strings.Cut(string(buf[:n]), "\n")
				fmt.Println("got", line) // one write, before the answer
				_, _ = ul.WriteTo([]byte(name+"\n"), from)
			}
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// probe is one connection attempt: Send (by default "probe ID") goes
// first, and the answer is the first line that comes back.
type probe struct {
	ID      string        `json:"id"`
	Proto   string        `json:"proto"` // tcp or udp; tcp6 or udp6 to resolve a name to its IPv6 address (AAAA) alone
	Addr    string        `json:"addr"`  // HOST:PORT
	Send    string        `json:"send,omitempty"`
	Timeout time.Duration `json:"timeout"`
}

// agentProbe reads a JSON list of probes, runs them all at once and
// writes a JSON map of probe ID to answer ("" for none).
func agentProbe(in io.Reader, out io.Writer) error {
	var ps []probe
	if err := json.NewDecoder(in).Decode(&ps); err != nil {
		return err
	}
	answers := make(map[string]string, len(ps))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := p.run()
			mu.Lock()
			answers[p.ID] = a
			mu.Unlock()
		}()
	}
	wg.Wait()
	return json.NewEncoder(out).Encode(answers)
}

func (p probe) run() string {
	deadline := time.Now().Add(p.Timeout)
	c, err := net.DialTimeout(p.Proto, p.Addr, p.Timeout)
	if err != nil {
		return ""
	}
	defer c.Close()
	send := p.Send
	if send == "" {
		send = "probe " + p.ID + "\n"
	}
	r := bufio.NewReader(c)
	if strings.HasPrefix(p.Proto, "tcp") {
		_ = c.SetDeadline(deadline)
		if _, err := c.Write([]byte(send)); err != nil {
			return ""
		}
		line, _ := r.ReadString('\n')
		return strings.TrimSpace(line)
	}
	// UDP: send again every 200ms until an answer, a refusal (ICMP port
	// unreachable) or the deadline, as the first datagram may wait on ARP.
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte(send)); err != nil {
			return ""
		}
		wait := time.Now().Add(200 * time.Millisecond)
		if wait.After(deadline) {
			wait = deadline
		}
		_ = c.SetReadDeadline(wait)
		line, err := r.ReadString('\n')
		if err == nil {
			return strings.TrimSpace(line)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return ""
		}
	}
	return ""
}

// agentCmd is the agent in namespace ns ("" for the host).
func (h *host) agentCmd(ns, mode string, args ...string) *exec.Cmd {
	h.t.Helper()
	var cmd *exec.Cmd
	if ns == "" {
		cmd = h.Command(agentBin, args...)
	} else {
		cmd = h.Command("ip", append([]string{"netns", "exec", ns, agentBin}, args...)...)
	}
	cmd.Env = append(os.Environ(), envAgent+"="+mode)
	return cmd
}

// server is an agent serving in a namespace.
type server struct {
	mu    sync.Mutex
	heard map[string]bool
}

// heardProbe reports whether a datagram of probe id arrived.
func (s *server) heardProbe(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heard["probe "+id]
}

// agentServe starts a server that answers name on TCP and UDP port in ns
// and returns once both listen. It ends with the test. A UDP server
// listens on the addresses ns has when it starts.
func (h *host) agentServe(ns, name string, port int) *server {
	h.t.Helper()
	cmd := h.agentCmd(ns, "serve", name, fmt.Sprint(port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("agent in %q: %v", ns, err)
	}
	h.t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		_ = stdin.Close()
		_ = cmd.Wait()
		h.t.Fatalf("agent serving %s on %d in %q did not start: %s", name, port, ns, stderr.String())
	}
	s := &server{heard: map[string]bool{}}
	go func() {
		for lines.Scan() {
			if got, ok := strings.CutPrefix(lines.Text(), "got "); ok {
				s.mu.Lock()
				s.heard[got] = true
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// agentProbe runs probes from ns at once and returns their answers by
// ID. It may run beside other calls: it fails nothing itself.
func (h *host) agentProbe(ns string, ps []probe) (map[string]string, error) {
	in, err := json.Marshal(ps)
	if err != nil {
		return nil, err
	}
	cmd := h.agentCmd(ns, "probe")
	cmd.Stdin = strings.NewReader(string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("probes from %q: %w\n%s", ns, err, stderr.String())
	}
	var answers map[string]string
	if err := json.Unmarshal(out, &answers); err != nil {
		return nil, fmt.Errorf("probes from %q: %w\n%s", ns, err, out)
	}
	return answers, nil
}
