package e2e

import (
	"os"
	"strings"
	"testing"
)

const modesFile = `name: modes
networks:
  lan: {subnet: 10.77.0.0/24}
containers:
  main:
    networks: [lan]
    command: [sh, -c, "ip -4 -o addr; exec sleep 1000"]
  side:
    network_mode: container:main
    command: [python3, -m, http.server, "8000"]
  iso:
    network_mode: none
    command: [sh, -c, "ip -o link; exec sleep 1000"]
  hostc:
    network_mode: host
    command: [sh, -c, "ip -4 -o addr; exec sleep 1000"]
  peer:
    networks: [lan]
`

// TestNetworkModes checks each mode from inside: container:main sees and
// serves on main's address, none has only lo, host sees the host's
// interfaces; then one container moves through the modes.
func TestNetworkModes(t *testing.T) {
	h := newHost(t)
	// An interface only the host has.
	h.mustSh("ip link add hostdummy type bridge && ip addr add 192.0.2.9/24 dev hostdummy && ip link set hostdummy up")
	file := writeFile(t, "modes", modesFile)
	h.mustTopo("up", "-f", file)

	if out := h.mustSh("ip netns list"); strings.Contains(out, "modes-side") || strings.Contains(out, "modes-hostc") {
		t.Errorf("side or hostc got a namespace:\n%s", out)
	}
	logs := func(c, want string) string {
		t.Helper()
		var out string
		h.waitFor(c+"'s log to show "+want, func() bool {
			out, _, _ = h.topo("logs", "-f", file, c)
			return strings.Contains(out, want)
		})
		return out
	}

	// container:main: main's namespace, address and served ports.
	side := h.pidOf("modes", "side")
	if ns := h.netnsOf(side); ns != "modes-main" {
		t.Errorf("side's command runs in %q, want modes-main", ns)
	}
	if out := h.mustTopo("exec", "-f", file, "side", "--", "ip", "-4", "-o", "addr"); !strings.Contains(out, "10.77.0.2/24") {
		t.Errorf("topo exec side shows:\n%s", out)
	}
	logs("main", "10.77.0.2/24")
	h.waitFor("peer to reach side's server on main's address", func() bool {
		return h.httpStatus("modes-peer", "http://10.77.0.2:8000/") == "200"
	})
	logs("side", `"GET / HTTP/1.1" 200`)
	for _, c := range h.ps(file).Containers {
		if c.Name == "side" && (c.Netns != "modes-main" || len(c.Networks) != 1 || c.Networks[0].Address != "10.77.0.2/24" || c.State != "running") {
			t.Errorf("ps shows side as %+v", c)
		}
	}

	// none: only lo, up; nothing reachable.
	out := logs("iso", "lo:")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "lo:") || !strings.Contains(lines[0], "UP") {
		t.Errorf("iso sees links:\n%s", out)
	}
	if _, ok := h.sh("ip netns exec modes-iso ping -c1 -W1 10.77.0.2"); ok {
		t.Error("iso reaches main")
	}

	// host: the host's interfaces, in topo's own namespace.
	logs("hostc", "192.0.2.9/24")
	if ns := h.netnsOf(h.pidOf("modes", "hostc")); ns != "" {
		t.Errorf("hostc's command runs in namespace %q", ns)
	}
	if out := h.mustTopo("exec", "-f", file, "hostc", "--", "ip", "-4", "-o", "addr"); !strings.Contains(out, "hostdummy") {
		t.Errorf("topo exec hostc shows:\n%s", out)
	}

	// iso moves: none -> container:main -> bridge on lan -> none. Each
	// change is planned, applied, converges, and the command follows.
	moves := []struct {
		mode, ns, addr string
	}{
		{"network_mode: container:main", "modes-main", "10.77.0.2/24"},
		{"networks: [lan]", "modes-iso", "10.77.0.4/24"},
		{"network_mode: none", "modes-iso", ""},
	}
	for _, m := range moves {
		os.WriteFile(file, []byte(strings.Replace(modesFile, "network_mode: none", m.mode, 1)), 0o644)
		if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 2 {
			t.Errorf("%s: plan shows no change (exit %d)", m.mode, code)
		}
		h.mustTopo("up", "-f", file)
		if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
			t.Errorf("%s: does not converge:\n%s", m.mode, out)
		}
		pid := h.pidOf("modes", "iso")
		if ns := h.netnsOf(pid); ns != m.ns {
			t.Errorf("%s: iso's command runs in %q, want %q", m.mode, ns, m.ns)
		}
		out := h.mustTopo("exec", "-f", file, "iso", "--", "ip", "-4", "-o", "addr")
		if m.addr != "" && !strings.Contains(out, m.addr) || m.addr == "" && strings.Contains(out, "eth") {
			t.Errorf("%s: iso has addresses:\n%s", m.mode, out)
		}
		_, exists := h.sh("ip netns pids modes-iso")
		if exists != (m.ns == "modes-iso") {
			t.Errorf("%s: namespace modes-iso exists: %v", m.mode, exists)
		}
	}
	if h.httpStatus("modes-iso", "http://10.77.0.2:8000/") == "200" {
		t.Error("iso, back to none, reaches main")
	}

	pids := []int{}
	for _, c := range []string{"main", "side", "iso", "hostc"} {
		pids = append(pids, h.pidOf("modes", c))
	}
	h.mustTopo("down", "-f", file)
	for _, pid := range pids {
		if h.alive(pid) {
			t.Errorf("process %d runs after down", pid)
		}
	}
	assertClean(t, h, "modes")
	// The host's own interface is untouched.
	h.mustSh("ip -o addr show hostdummy | grep -q 192.0.2.9/24")
}
