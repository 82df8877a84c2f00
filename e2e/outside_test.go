package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Addresses of the "outside" host: a namespace joined to the sandbox
// host's root namespace by a veth, as another machine on the host's LAN.
const (
	hostAddr    = "198.18.0.1"
	outsideAddr = "198.18.0.2"
)

// outside makes the namespace "outside" with address 198.18.0.2/24, whose
// peer in the host has 198.18.0.1/24.
func (h *host) outside() {
	h.t.Helper()
	h.mustSh(`ip netns add outside
ip link add vout type veth peer name eth0 netns outside
ip addr add ` + hostAddr + `/24 dev vout
ip link set vout up
ip -n outside addr add ` + outsideAddr + `/24 dev eth0
ip -n outside link set eth0 up
ip -n outside link set lo up`)
}

// in prefixes a command with ip netns exec NS, or nothing for the host.
func in(ns, cmd string) string {
	if ns == "" {
		return cmd
	}
	return "ip netns exec " + ns + " " + cmd
}

// serve starts a command in a namespace in the background and waits until
// something listens on port; the sandbox's end kills it, and so does
// t.Cleanup, by PID.
func (h *host) serve(ns string, port int, proto string, argv ...string) {
	h.t.Helper()
	args := append([]string{"netns", "exec", ns}, argv...)
	cmd := h.Command("ip", args...)
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start %v in %s: %v", argv, ns, err)
	}
	h.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	flag := "-ltnH"
	if proto == "udp" {
		flag = "-lunH"
	}
	h.waitFor(fmt.Sprintf("%v in %s to listen on %d/%s", argv, ns, port, proto), func() bool {
		out, _ := h.sh(in(ns, "ss "+flag+" sport = :"+fmt.Sprint(port)))
		return strings.TrimSpace(out) != ""
	})
}

// Checks that something is reachable wait for it, so that a loaded
// machine, or a first packet that waits for ARP, does not fail them:
// pings are `ping -c1 -w10` (one reply, waited for up to 10 s), TCP and
// UDP checks retry through eventually. Checks that something is not
// reachable try once.
const reachWait = 10 * time.Second

// eventually calls try until it reports true or reachWait has passed, and
// says whether it did.
func eventually(try func() bool) bool {
	for deadline := time.Now().Add(reachWait); ; time.Sleep(100 * time.Millisecond) {
		if try() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// pingCmd is the command that checks whether ns reaches addr: waiting for
// a reply when want, once otherwise.
func pingCmd(ns, addr string, want bool) string {
	if want {
		return in(ns, "ping -c1 -w10 "+addr)
	}
	return in(ns, "ping -c1 -W1 "+addr)
}

// tcpGet connects from ns to addr:port, once, and returns what the server
// said.
func (h *host) tcpGet(ns, addr string, port int) (string, bool) {
	h.t.Helper()
	out, ok := h.sh(in(ns, fmt.Sprintf("socat -T2 - TCP:%s:%d,connect-timeout=2 </dev/null", addr, port)))
	return strings.TrimSpace(out), ok && strings.TrimSpace(out) != ""
}

// tcpReach is tcpGet that, when want, tries until it gets an answer.
func (h *host) tcpReach(ns, addr string, port int, want bool) (got string, ok bool) {
	h.t.Helper()
	if !want {
		return h.tcpGet(ns, addr, port)
	}
	eventually(func() bool { got, ok = h.tcpGet(ns, addr, port); return ok })
	return got, ok
}

// udpEcho sends a datagram from ns, until it comes back (see eventually),
// and returns the last answer.
func (h *host) udpEcho(ns, addr string, port int, msg string) string {
	h.t.Helper()
	var got string
	eventually(func() bool {
		out, _ := h.sh(in(ns, fmt.Sprintf("echo %s | socat -T2 - UDP:%s:%d", msg, addr, port)))
		got = strings.TrimSpace(out)
		return got == msg
	})
	return got
}

// topoEnv runs topo with extra environment variables.
func (h *host) topoEnv(env []string, args ...string) (string, string, int) {
	h.t.Helper()
	cmd := h.Command(topoBin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return stdout.String(), stderr.String(), ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("topo %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), 0
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/deps installs it)", tool)
		}
	}
}
