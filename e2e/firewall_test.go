package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const pubFile = `
name: pub
networks:
  front: {subnet: 10.77.1.0/24}
  side: {subnet: 10.77.2.0/24}
containers:
  web:
    networks: [front]
    ports: ["8080:80", "80", "127.0.0.1:8081:80", "5300:5300/udp"]
  peer: {networks: [front]}
  stranger: {networks: [side]}
`

// TestPublishedPortsCarryTraffic: a TCP server published three ways and a
// UDP echo, reached from an outside host, from the host itself and from
// containers through the host's address; the random port stays put.
func TestPublishedPortsCarryTraffic(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	h.outside()
	file := writeFile(t, "pub", pubFile)
	h.mustTopo("up", "-f", file)
	h.serve("pub-web", 80, "tcp", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello-from-web")
	h.serve("pub-web", 5300, "udp", "socat", "UDP-RECVFROM:5300,fork", "EXEC:cat")

	ports := h.mustTopo("port", "-f", file, "web", "80")
	lines := strings.Fields(ports)
	random := 0
	for _, l := range lines {
		ip, p, _ := strings.Cut(l, ":")
		n, _ := strconv.Atoi(p)
		if ip == "0.0.0.0" && n != 8080 {
			random = n
		}
	}
	if len(lines) != 3 || !strings.Contains(ports, "0.0.0.0:8080\n") || !strings.Contains(ports, "127.0.0.1:8081\n") || random < 32768 || random > 60999 {
		t.Fatalf("topo port web 80 = %q, want 0.0.0.0:8080, 127.0.0.1:8081 and 0.0.0.0:<ephemeral>", ports)
	}
	if out := h.mustTopo("port", "-f", file, "web"); !strings.Contains(out, "5300/udp -> 0.0.0.0:5300") || !strings.Contains(out, "80/tcp -> 0.0.0.0:8080") {
		t.Errorf("topo port web = %q", out)
	}

	reach := func(who, ns, addr string, port int, want bool) {
		t.Helper()
		got, ok := h.tcpReach(ns, addr, port, want)
		if ok != want || ok && got != "hello-from-web" {
			t.Errorf("%s -> %s:%d: got %q (reached %v), want reached %v", who, addr, port, got, ok, want)
		}
	}
	// From another host: the publishes on every address, not the one on 127.0.0.1.
	reach("outside", "outside", hostAddr, 8080, true)
	reach("outside", "outside", hostAddr, random, true)
	reach("outside", "outside", hostAddr, 8081, false)
	// From the host itself, through 127.0.0.1 and through its own address.
	for _, p := range []int{8080, random, 8081} {
		reach("host", "", "127.0.0.1", p, true)
	}
	reach("host", "", hostAddr, 8080, true)
	reach("host", "", hostAddr, random, true)
	reach("host", "", hostAddr, 8081, false)
	// From containers through the host's address: of the same network
	// (hairpin), of another network, and the container itself, whose
	// packets come back out of the bridge port they went in by.
	reach("peer", "pub-peer", hostAddr, 8080, true)
	reach("stranger", "pub-stranger", hostAddr, random, true)
	reach("self", "pub-web", hostAddr, 8080, true)
	reach("self", "pub-web", hostAddr, random, true)
	// UDP.
	if got := h.udpEcho("outside", hostAddr, 5300, "ping-udp"); got != "ping-udp" {
		t.Errorf("outside -> %s:5300/udp echoed %q", hostAddr, got)
	}

	// Another up changes nothing, and the random port stays.
	if out := h.mustTopo("up", "-f", file); !strings.Contains(out, "nothing to do") {
		t.Errorf("second up: %s", out)
	}
	if again := h.mustTopo("port", "-f", file, "web", "80"); again != ports {
		t.Errorf("after another up, topo port says %q, was %q", again, ports)
	}
	reach("outside", "outside", hostAddr, random, true)
}

// TestLoopbackPublishIsNotReachableFromOtherHosts: a host on the LAN that
// routes 127.0.0.1 to the host (as an attacker can) does not reach a
// publish bound to 127.0.0.1.
func TestLoopbackPublishIsNotReachableFromOtherHosts(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	h.outside()
	file := writeFile(t, "pub", pubFile)
	h.mustTopo("up", "-f", file)
	h.serve("pub-web", 80, "tcp", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello-from-web")
	// The outside host sends packets for 127.0.0.1:8081 to the host.
	h.mustSh(`ip -n outside addr flush dev lo
ip -n outside link set lo down
ip netns exec outside sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1
ip -n outside route add 127.0.0.1/32 via ` + hostAddr)
	// The way in works: the publish on every address answers through it,
	// as Docker's publishes on 127.0.0.1 did before v28.
	if got, ok := h.tcpReach("outside", "127.0.0.1", 8080, true); !ok {
		t.Fatalf("outside -> 127.0.0.1:8080 through the host: %q\n%s", got, h.mustSh("ip -n outside route; ip -n outside addr; iptables-save -c"))
	}
	if got, ok := h.tcpGet("outside", "127.0.0.1", 8081); ok {
		t.Errorf("outside reached the 127.0.0.1 publish: %q", got)
	}
}

const isoFile = `
name: iso
networks:
  red: {subnet: 10.78.1.0/24}
  blue: {subnet: 10.78.2.0/24}
  vault: {subnet: 10.78.3.0/24, internal: true}
containers:
  r1: {networks: [red]}
  r2: {networks: [red]}
  b1: {networks: [blue]}
  v1: {networks: [vault]}
`

const otherFile = `
name: other
networks:
  net: {subnet: 10.79.1.0/24}
containers:
  o1: {networks: [net]}
`

// TestIsolation: one network's containers reach each other; two networks,
// of one project or of two, do not; an internal network reaches nothing
// outside; a normal container reaches outside with the host's address.
func TestIsolation(t *testing.T) {
	need(t, "socat", "ss", "ping")
	h := newHost(t)
	h.outside()
	iso, other := writeFile(t, "iso", isoFile), writeFile(t, "other", otherFile)
	h.mustTopo("up", "-f", iso)
	h.mustTopo("up", "-f", other)

	ping := func(ns, addr string, want bool) {
		t.Helper()
		_, ok := h.sh(pingCmd(ns, addr, want))
		if ok != want {
			t.Errorf("%s ping %s: reached %v, want %v", ns, addr, ok, want)
		}
	}
	ping("iso-r1", "10.78.1.3", true)  // r2, same network
	ping("iso-r1", "10.78.2.2", false) // b1, other network
	ping("iso-b1", "10.78.1.2", false)
	ping("iso-r1", "10.78.3.2", false) // v1, internal network
	ping("iso-r1", "10.79.1.2", false) // o1, other project
	ping("other-o1", "10.78.1.2", false)
	ping("iso-r1", outsideAddr, true)
	ping("other-o1", outsideAddr, true)
	ping("iso-v1", outsideAddr, false)
	// Even with a route out, the internal network's bridge lets nothing leave.
	h.mustSh("ip -n iso-v1 route add default via 10.78.3.1")
	ping("iso-v1", outsideAddr, false)
	ping("iso-v1", "10.78.1.2", false)

	// The outside host sees the host's address as the source.
	h.serve("outside", 7000, "tcp", "socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR")
	if got, _ := h.tcpReach("iso-r1", outsideAddr, 7000, true); got != hostAddr {
		t.Errorf("outside saw r1's connection from %q, want %s", got, hostAddr)
	}

	// down of one project leaves the other's rules working.
	h.mustTopo("down", "-f", iso)
	ping("other-o1", outsideAddr, true)
	if out := h.mustSh("iptables-save"); strings.Contains(out, "topo:iso:") {
		t.Errorf("down of iso left rules:\n%s", out)
	}
	h.mustTopo("down", "-f", other)
	if out := h.mustSh("iptables-save"); strings.Contains(out, "TOPO-") || strings.Contains(out, "topo:") {
		t.Errorf("down of the last project left topo's chains:\n%s", out)
	}
}

// TestDownLeavesOthersRules: down removes every rule, chain and jump of
// the project, and rules of another program survive it.
func TestDownLeavesOthersRules(t *testing.T) {
	h := newHost(t)
	h.mustSh(`iptables -A FORWARD -s 198.51.100.7/32 -m comment --comment "not topo" -j DROP
iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE
iptables -N OTHER-CHAIN
iptables -A OTHER-CHAIN -j RETURN`)
	before := h.snapshot()
	file := writeFile(t, "pub", pubFile)
	h.mustTopo("up", "-f", file)
	if out := h.mustSh("iptables-save"); !strings.Contains(out, "topo:pub:") {
		t.Fatalf("up made no rules:\n%s", out)
	}
	h.mustTopo("down", "-f", file)
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("down did not restore the host (-before +after):\n%s", d)
	}
}

// TestFirewallFailureRollsBack: with iptables-restore failing on the nat
// table, up exits non-zero and the kernel is exactly as before: the
// filter rules, links and namespaces already made are undone.
func TestFirewallFailureRollsBack(t *testing.T) {
	h := newHost(t)
	bin := t.TempDir()
	for _, name := range []string{"iptables-restore", "iptables-nft-restore", "iptables-legacy-restore"} {
		real, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		script := fmt.Sprintf("#!/bin/sh\ninput=$(cat)\ncase \"$input\" in *'*nat'*) echo 'injected failure' >&2; exit 1;; esac\nprintf '%%s\\n' \"$input\" | exec %s \"$@\"\n", real)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.mustSh("iptables -A FORWARD -s 198.51.100.7/32 -j DROP")
	before := h.snapshot()
	file := writeFile(t, "pub", pubFile)
	out, errOut, code := h.topoEnv([]string{"PATH=" + bin + ":" + os.Getenv("PATH")}, "up", "-f", file)
	if code == 0 {
		t.Fatalf("up succeeded with a failing iptables-restore:\n%s", out)
	}
	if !strings.Contains(errOut, "injected failure") || !strings.Contains(errOut, "rolled back") {
		t.Errorf("error does not say what failed and that it rolled back:\n%s", errOut)
	}
	if !regexp.MustCompile(`rolled back step \d+: - iptables -t filter `).MatchString(out) {
		t.Errorf("progress does not show the firewall rollback:\n%s", out)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("kernel after the failed up (-before +after):\n%s", d)
	}
}

// TestMissingIptablesIsReportedFirst: without the iptables programs, up
// names the Debian package and changes nothing.
func TestMissingIptablesIsReportedFirst(t *testing.T) {
	h := newHost(t)
	before := h.snapshot()
	file := writeFile(t, "pub", pubFile)
	_, errOut, code := h.topoEnv([]string{"PATH=" + t.TempDir()}, "up", "-f", file)
	if code != 1 || !strings.Contains(errOut, "Debian package iptables") {
		t.Errorf("up without iptables: exit %d, stderr:\n%s", code, errOut)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("kernel changed (-before +after):\n%s", d)
	}
}

// TestVerboseNamesTheBackend: -v says which iptables topo uses.
func TestVerboseNamesTheBackend(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "pub", pubFile)
	_, errOut, code := h.topo("plan", "-v", "-f", file)
	if code != 0 || !strings.Contains(errOut, "firewall: using iptables-") {
		t.Errorf("plan -v: exit %d, stderr:\n%s", code, errOut)
	}
}
