package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// listener is a program of the sandbox host that holds a port, as ss
// shows it.
type listener struct {
	pid  int
	name string
	addr string // as ss prints it: 0.0.0.0, 127.0.0.1, [::]
}

var ssUser = regexp.MustCompile(`^(\S+):\d+ .*users:\(\("([^"]+)",pid=(\d+)`)

// listen starts argv in the sandbox host's namespace, waits until it
// holds port (TCP listening, or UDP bound), and says who holds it, as
// `ss -p` finds it. The sandbox's end stops it.
func (h *host) listen(port int, proto string, argv ...string) listener {
	h.t.Helper()
	cmd := h.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start %v: %v", argv, err)
	}
	h.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	flag := "-Hltnp"
	if proto == "udp" {
		flag = "-Hlunp"
	}
	var l listener
	h.waitFor(fmt.Sprintf("%v to hold %d/%s", argv, port, proto), func() bool {
		out, _ := h.sh(fmt.Sprintf("ss %s sport = :%d", flag, port))
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			// State Recv-Q Send-Q Local:Port Peer:Port Process
			if f := strings.Fields(line); len(f) >= 6 {
				if m := ssUser.FindStringSubmatch(strings.Join(f[3:], " ")); m != nil {
					pid, _ := strconv.Atoi(m[3])
					l = listener{pid: pid, name: m[2], addr: m[1]}
					return true
				}
			}
		}
		return false
	})
	return l
}

// holds is how topo's message names the listener: its process and where
// it listens.
func (l listener) holds(verb string, port int) string {
	s := fmt.Sprintf("%s (pid %d) %s %s:%d", l.name, l.pid, verb, l.addr, port)
	if l.addr == "[::]" || l.addr == "*" {
		s = fmt.Sprintf("%s (pid %d) %s [::]:%d, which takes IPv4 too", l.name, l.pid, verb, port)
	}
	return s
}

// webFile is a project of one container, web, on one network with a
// fixed subnet, publishing ports; its ports: are on line 8, the first
// entry at column 13.
func webFile(project, subnet string, ports ...string) string {
	return fmt.Sprintf("\nname: %s\nnetworks:\n  lan: {subnet: %s}\ncontainers:\n  web:\n    networks: [lan]\n    ports: [\"%s\"]\n",
		project, subnet, strings.Join(ports, `", "`))
}

// reach is a TCP connection a test expects to get an answer.
type reach struct {
	ns, addr string
	port     int
	want     string
}

// expectReach connects as each reach says and checks the answer.
func (h *host) expectReach(rs ...reach) {
	h.t.Helper()
	for _, r := range rs {
		if got, _ := h.tcpReach(r.ns, r.addr, r.port, true); got != r.want {
			h.t.Errorf("%q -> %s:%d says %q, want %q", r.ns, r.addr, r.port, got, r.want)
		}
	}
}

// answer serves reply to every TCP connection to port in ns.
func (h *host) answer(ns string, port int, reply string) {
	h.t.Helper()
	h.serve(ns, port, "tcp", "socat", fmt.Sprintf("TCP-LISTEN:%d,fork,reuseaddr", port), "SYSTEM:echo "+reply)
}

// httpOK fetches url from ns ("" for the host) until it answers 200 (see
// eventually), and returns the last status.
func (h *host) httpOK(ns, url string) string {
	h.t.Helper()
	var got string
	eventually(func() bool {
		out, _ := h.sh(in(ns, fmt.Sprintf("curl -s -m 2 -o /dev/null -w '%%{http_code}' %s", url)))
		got = strings.TrimSpace(out)
		return got == "200"
	})
	return got
}

// TestHeldHostPortStopsUp: with python3's web server on port 18080 of the
// host and another on :: port 18082 (IPv4 too), publishing 18080, or
// 18082 on 127.0.0.1, fails before the first step, naming the process as
// ss does, and changes nothing: the servers still answer, from the host
// and from another host. An IPv6-only listener on 18083 is no conflict.
// Once the servers stop, up publishes the ports.
func TestHeldHostPortStopsUp(t *testing.T) {
	need(t, "python3", "socat", "ss", "curl")
	h := newHost(t)
	h.outside()
	dir := t.TempDir()
	srv := h.listen(18080, "tcp", "python3", "-m", "http.server", "--directory", dir, "--bind", "0.0.0.0", "18080")
	dual := h.listen(18082, "tcp", "python3", "-m", "http.server", "--directory", dir, "--bind", "::", "18082")
	h.listen(18083, "tcp", "socat", "TCP6-LISTEN:18083,ipv6only=1,fork,reuseaddr", "SYSTEM:echo hello-v6")
	file := writeFile(t, "held", webFile("held", "10.81.0.0/24", "18080:80", "127.0.0.1:18082:80", "18083:81"))
	before := h.snapshot()
	want := []string{
		fmt.Sprintf(`%s:8:13: container web: port "18080:80": failed to bind host port 0.0.0.0:18080/tcp: address already in use: %s; stop it, or publish on another host port`,
			file, srv.holds("listens on", 18080)),
		fmt.Sprintf(`%s:8:25: container web: port "127.0.0.1:18082:80": failed to bind host port 127.0.0.1:18082/tcp: address already in use: %s; stop it, or publish on another host port`,
			file, dual.holds("listens on", 18082)),
	}
	for _, verb := range []string{"plan", "up"} {
		out, errOut, code := h.topo(verb, "-f", file)
		if code != 1 || !strings.Contains(errOut, want[0]) || !strings.Contains(errOut, want[1]) || strings.Contains(errOut, "18083") {
			t.Errorf("%s with 18080 and 18082 held: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr to hold, and nothing of 18083:\n%s", verb, code, out, errOut, strings.Join(want, "\n"))
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("a refused up changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := h.httpOK("", "http://127.0.0.1:18080/"); got != "200" {
		t.Errorf("the host's server from the host: HTTP %q, want 200", got)
	}
	if got := h.httpOK("outside", "http://"+hostAddr+":18080/"); got != "200" {
		t.Errorf("the host's server from another host: HTTP %q, want 200", got)
	}
	if got := h.httpOK("", "http://127.0.0.1:18082/"); got != "200" {
		t.Errorf("the host's server on :: from the host: HTTP %q, want 200", got)
	}

	h.mustSh(fmt.Sprintf("kill %d %d", srv.pid, dual.pid))
	h.waitFor("the servers to stop", func() bool {
		out, _ := h.sh("ss -Hltn '( sport = :18080 or sport = :18082 )'")
		return strings.TrimSpace(out) == ""
	})
	h.mustTopo("up", "-f", file)
	h.answer("held-web", 80, "hello-from-web")
	h.answer("held-web", 81, "hello-81")
	h.expectReach(
		reach{"outside", hostAddr, 18080, "hello-from-web"},
		reach{"", "127.0.0.1", 18082, "hello-from-web"},
		reach{"outside", hostAddr, 18083, "hello-81"},
		reach{"", "[::1]", 18083, "hello-v6"}, // the IPv6 listener keeps IPv6
	)
}

// TestHostPortsCollideAsBindWould: a TCP listener on 127.0.0.1:18081 and
// a UDP socket on 0.0.0.0:5300 refuse publishes of those ports on
// 127.0.0.1 and on every address, and of 5300/udp; a publish of 18081 on
// another host address and of 5300/tcp goes ahead and carries traffic
// while the listener keeps answering on 127.0.0.1. A program that binds
// a port after topo published it is no conflict for the project: topo's
// own rule holds it.
func TestHostPortsCollideAsBindWould(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	h.outside()
	tcp := h.listen(18081, "tcp", "socat", "TCP-LISTEN:18081,bind=127.0.0.1,fork,reuseaddr", "SYSTEM:echo hello-from-host")
	udp := h.listen(5300, "udp", "socat", "UDP-RECVFROM:5300,fork", "EXEC:cat")
	bad := writeFile(t, "bind", webFile("bind", "10.82.0.0/24", "127.0.0.1:18081:80", "5300:53/udp"))
	all := writeFile(t, "bind", webFile("bind", "10.82.0.0/24", "18081:80"))
	before := h.snapshot()
	for _, c := range []struct{ file, want string }{
		{bad, fmt.Sprintf(`%s:8:13: container web: port "127.0.0.1:18081:80": failed to bind host port 127.0.0.1:18081/tcp: address already in use: %s;`, bad, tcp.holds("listens on", 18081))},
		{bad, fmt.Sprintf(`%s:8:35: container web: port "5300:53/udp": failed to bind host port 0.0.0.0:5300/udp: address already in use: %s;`, bad, udp.holds("is bound to", 5300))},
		{all, fmt.Sprintf(`%s:8:13: container web: port "18081:80": failed to bind host port 0.0.0.0:18081/tcp: address already in use: %s;`, all, tcp.holds("listens on", 18081))},
	} {
		if _, errOut, code := h.topo("up", "-f", c.file); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("up: exit %d\n%s\nwant stderr to hold:\n%s", code, errOut, c.want)
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("a refused up changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	ok := writeFile(t, "bind", webFile("bind", "10.82.0.0/24", hostAddr+":18081:80", "5300:54/tcp"))
	h.mustTopo("up", "-f", ok)
	h.answer("bind-web", 80, "hello-from-web")
	h.answer("bind-web", 54, "hello-54")
	h.expectReach(
		reach{"outside", hostAddr, 18081, "hello-from-web"},
		reach{"", "127.0.0.1", 18081, "hello-from-host"}, // the listener keeps 127.0.0.1
		reach{"outside", hostAddr, 5300, "hello-54"},
	)
	if got := h.udpEcho("", "127.0.0.1", 5300, "ping-udp"); got != "ping-udp" {
		t.Errorf("host -> 127.0.0.1:5300/udp echoed %q, want the host's socket", got)
	}

	// A listener on the published address and port, bound after up.
	h.listen(18081, "tcp", "socat", "TCP-LISTEN:18081,bind="+hostAddr+",fork,reuseaddr", "SYSTEM:echo late")
	if out, errOut, code := h.topo("plan", "-f", ok, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan with a listener on the project's own publish: exit %d\n%s%s", code, out, errOut)
	}
}

// TestRandomPortsSkipReservedAndAreShared: with the ephemeral range
// 40000-40010, 40000-40002 reserved and 40003 held by a listener, the
// first random port is 40004; port 81, published on two host addresses,
// gets 40005 on both, and traffic reaches it on each.
func TestRandomPortsSkipReservedAndAreShared(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	h.outside()
	h.mustSh(`sysctl -qw net.ipv4.ip_local_port_range="40000 40010" net.ipv4.ip_local_reserved_ports=40000-40002`)
	h.listen(40003, "tcp", "socat", "TCP-LISTEN:40003,fork,reuseaddr", "SYSTEM:echo host")
	file := writeFile(t, "rnd", webFile("rnd", "10.83.0.0/24", "80", "127.0.0.1::81", hostAddr+"::81"))
	h.mustTopo("up", "-f", file)
	if got := h.mustTopo("port", "-f", file, "web", "80"); got != "0.0.0.0:40004\n" {
		t.Errorf("topo port web 80 = %q, want 0.0.0.0:40004", got)
	}
	got := strings.Fields(h.mustTopo("port", "-f", file, "web", "81"))
	if len(got) != 2 || !strings.Contains(strings.Join(got, " "), "127.0.0.1:40005") || !strings.Contains(strings.Join(got, " "), hostAddr+":40005") {
		t.Errorf("topo port web 81 = %q, want 127.0.0.1:40005 and %s:40005", got, hostAddr)
	}
	h.answer("rnd-web", 80, "hello-80")
	h.answer("rnd-web", 81, "hello-81")
	h.expectReach(
		reach{"outside", hostAddr, 40004, "hello-80"},
		reach{"", "127.0.0.1", 40005, "hello-81"},
		reach{"outside", hostAddr, 40005, "hello-81"},
		reach{"", "127.0.0.1", 40003, "host"},
	)
}

// TestSubnetOverTheHostIsRefused: a subnet holding an address of the host,
// or overlapping a route the host has on a link, is refused at the subnet
// with the interface named, and nothing changes; the host still reaches
// its neighbour there.
func TestSubnetOverTheHostIsRefused(t *testing.T) {
	need(t, "ping")
	h := newHost(t)
	h.outside()
	h.mustSh("ip route add 10.60.0.0/16 dev vout")
	for _, c := range []struct{ subnet, why string }{
		{"198.18.0.128/25", "overlaps 198.18.0.0/24, which the host reaches on-link through vout (address " + hostAddr + "/24)"},
		{"198.18.0.0/16", "contains the host's address " + hostAddr + "/24 on vout"},
		{"10.60.1.0/24", "overlaps 10.60.0.0/16, which the host reaches on-link through vout (address " + hostAddr + "/24)"},
	} {
		file := writeFile(t, "over", "name: over\nnetworks:\n  lan: {subnet: "+c.subnet+"}\ncontainers:\n  a: {networks: [lan]}\n")
		before := h.snapshot()
		want := fmt.Sprintf("%s:3:17: network lan: subnet %s %s", file, c.subnet, c.why)
		if _, errOut, code := h.topo("up", "-f", file); code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("up with subnet %s: exit %d\n%s\nwant stderr to hold:\n%s", c.subnet, code, errOut, want)
		}
		if after := h.snapshot(); after != before {
			t.Errorf("a refused up changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}
	if _, ok := h.sh(pingCmd("", outsideAddr, true)); !ok {
		t.Errorf("the host no longer reaches %s", outsideAddr)
	}
}

// TestAutomaticSubnetsAsDocker: under a full-tunnel VPN's halves of the
// default route and a route to 172.16.0.0/12 through a gateway, the
// automatic subnet is still 172.17.0.0/16, as Docker picks it, and the
// bridge's route wins for its containers' traffic; with a nameserver of
// the host's resolv.conf in 172.17.0.0/16 it is 172.18.0.0/16.
func TestAutomaticSubnetsAsDocker(t *testing.T) {
	need(t, "ping")
	h := newHost(t)
	h.outside()
	h.mustSh(`ip route add 0.0.0.0/1 via ` + outsideAddr + `
ip route add 128.0.0.0/1 via ` + outsideAddr + `
ip route add 172.16.0.0/12 via ` + outsideAddr)
	file := writeFile(t, "auto", "name: auto\ncontainers:\n  a: {}\n  b: {}\n")
	h.mustTopo("up", "-f", file)
	h.bridgeWith("172.17.0.1/16")
	for _, c := range []struct{ ns, addr string }{{"auto-a", "172.17.0.3"}, {"", "172.17.0.2"}, {"auto-b", "172.17.0.1"}} {
		if out, ok := h.sh(pingCmd(c.ns, c.addr, true)); !ok {
			t.Errorf("%q ping %s: %s", c.ns, c.addr, out)
		}
	}
	h.mustTopo("down", "-f", file)

	h.mustSh(`printf 'nameserver 172.17.0.53\n' > /run/resolv.test && mount --bind /run/resolv.test /etc/resolv.conf`)
	h.mustTopo("up", "-f", file)
	h.bridgeWith("172.18.0.1/16") // not 172.17.0.0/16, which holds the nameserver
	if out, ok := h.sh(pingCmd("auto-a", "172.18.0.3", true)); !ok {
		t.Errorf("a ping b on 172.18.0.0/16: %s", out)
	}
}

// TestValidateCatchesWhatPlanRejects: validate, without root or kernel,
// refuses a subnet too small for its containers and hostname with
// network_mode container:NAME, at their lines; it accepts 1234/UDP, which
// up publishes as UDP and which carries a datagram.
func TestValidateCatchesWhatPlanRejects(t *testing.T) {
	small := writeFile(t, "small", "networks:\n  lan: {subnet: 10.84.0.0/30}\ncontainers:\n  a: {networks: [lan]}\n  b: {networks: [lan]}\n")
	_, errOut, code := run(t, false, "validate", "-f", small)
	if want := small + `:2:17: network "lan": subnet 10.84.0.0/30 holds 1 container (4 addresses less the network, gateway and broadcast addresses), but 2 join it ("a", "b"): use a /29 or larger`; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate of a /30 with two containers: exit %d\n%s\nwant:\n%s", code, errOut, want)
	}
	shared := writeFile(t, "shared", "containers:\n  web: {}\n  probe:\n    network_mode: container:web\n    hostname: probe\n")
	_, errOut, code = run(t, false, "validate", "-f", shared)
	if want := shared + `:5:5: container "probe": conflicting options: hostname and the network mode "container:web" (line 4)`; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate of hostname with container:web: exit %d\n%s\nwant:\n%s", code, errOut, want)
	}

	const upper = "name: upper\nnetworks:\n  lan: {subnet: 10.85.0.0/24}\ncontainers:\n  web: {networks: [lan], ports: [\"5301:1234/UDP\"]}\n"
	file := writeFile(t, "upper", upper)
	if out, errOut, code := run(t, false, "validate", "-f", file); code != 0 {
		t.Fatalf("validate of 1234/UDP: exit %d\n%s%s", code, out, errOut)
	}
	need(t, "socat", "ss")
	h := newHost(t)
	h.outside()
	h.mustTopo("up", "-f", file)
	if got := h.mustTopo("port", "-f", file, "web"); got != "1234/udp -> 0.0.0.0:5301\n" {
		t.Errorf("topo port web = %q", got)
	}
	h.serve("upper-web", 1234, "udp", "socat", "UDP-RECVFROM:1234,fork", "EXEC:cat")
	if got := h.udpEcho("outside", hostAddr, 5301, "ping-upper"); got != "ping-upper" {
		t.Errorf("outside -> %s:5301/udp echoed %q", hostAddr, got)
	}
}
