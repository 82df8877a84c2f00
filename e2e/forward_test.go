package e2e

import (
	"strings"
	"testing"
)

// forwarding reads the sandbox's net.ipv4.ip_forward.
func (h *host) forwarding() string {
	h.t.Helper()
	return strings.TrimSpace(h.mustSh("sysctl -n net.ipv4.ip_forward"))
}

const forwardRecord = "/run/topo/net.ipv4.ip_forward.before"

// TestDownPutsForwardingBack: the last project's down puts ip_forward
// back to what it was before topo first set it, unless someone else
// changed it since; a project that goes while another stays keeps it on.
func TestDownPutsForwardingBack(t *testing.T) {
	h := newHost(t)
	a := example("three")
	b := writeFile(t, "other", "name: other\nnetworks:\n  n: {subnet: 10.79.0.0/24}\ncontainers:\n  x: {networks: [n]}\n")

	t.Run("up then down gives 0", func(t *testing.T) {
		h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
		h.mustTopo("up", "-f", a)
		if got := h.forwarding(); got != "1" {
			t.Fatalf("ip_forward after up: %s, want 1", got)
		}
		// The record: what it was, root's alone.
		if got := h.mustSh("stat -c '%U %a' " + forwardRecord + " && cat " + forwardRecord); got != "root 600\n0\n" {
			t.Errorf("record after up: %q, want root 600 and 0", got)
		}
		h.mustTopo("down", "-f", a)
		if got := h.forwarding(); got != "0" {
			t.Errorf("ip_forward after down: %s, want 0", got)
		}
		if out, _ := h.sh("find /run/topo 2>/dev/null"); out != "" {
			t.Errorf("left in /run/topo:\n%s", out)
		}
	})
	t.Run("on before up stays on", func(t *testing.T) {
		h.mustSh("sysctl -qw net.ipv4.ip_forward=1")
		h.mustTopo("up", "-f", a)
		h.mustTopo("down", "-f", a)
		if got := h.forwarding(); got != "1" {
			t.Errorf("ip_forward after down: %s, want 1 (it was on before topo)", got)
		}
	})
	t.Run("changed by someone else after up", func(t *testing.T) {
		// Turned off by hand while the project is up: down leaves it off
		// and writes nothing, and drops the record.
		h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
		h.mustTopo("up", "-f", a)
		h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
		out := h.mustTopo("down", "-f", a)
		if strings.Contains(out, "sysctl -w net.ipv4.ip_forward") || h.forwarding() != "0" {
			t.Errorf("down after someone else turned forwarding off: ip_forward %s, output:\n%s", h.forwarding(), out)
		}
		if _, ok := h.sh("test -e " + forwardRecord); ok {
			t.Error("record left after down")
		}
	})
	t.Run("two projects: down of the first keeps 1", func(t *testing.T) {
		h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
		h.mustTopo("up", "-f", a)
		h.mustTopo("up", "-f", b)
		h.mustTopo("down", "-f", a)
		if got := h.forwarding(); got != "1" {
			t.Errorf("ip_forward after the first down: %s, want 1 (project other needs it)", got)
		}
		h.mustSh("ip netns exec other-x ping -c1 -W2 10.79.0.1")
		h.mustTopo("down", "-f", b)
		if got := h.forwarding(); got != "0" {
			t.Errorf("ip_forward after the last down: %s, want 0", got)
		}
	})
	assertClean(t, h, "three")
	assertClean(t, h, "other")
}
