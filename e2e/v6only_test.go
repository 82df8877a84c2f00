package e2e

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/topolab/topo/view"
)

// checkLoopback6 checks examples/dualstack's web publish on [::1]:8081,
// which the project's resolver process forwards: the host reaches it on
// its loopback (curl -6), only there (nothing listens on [::]:8081), and
// neither the outside host nor a container reaches it, through any
// address of the host.
func (h *host) checkLoopback6(file string) {
	t := h.t
	t.Helper()
	if out, ok := h.sh("curl -sS -6 -o /dev/null -w %{http_code} --retry 5 --retry-connrefused --retry-delay 1 http://[::1]:8081/"); !ok || out != "200" {
		t.Errorf("host -> [::1]:8081 (the resolver's proxy to web): curl says %q", out)
	}
	if ps := h.mustTopo("ps", "-f", file); !strings.Contains(ps, "[::1]:8081->80/tcp") {
		t.Errorf("ps shows not web's [::1]:8081->80/tcp:\n%s", ps)
	}
	if ln := strings.Fields(h.mustSh("ss -ltnH sport = :8081")); len(ln) < 4 || ln[3] != "[::1]:8081" {
		t.Errorf("host's listeners on 8081: %v, want [::1]:8081 alone", ln)
	}
	for _, c := range []struct{ who, ns, url string }{
		{"outside over IPv6", "outside", "http://[" + hostAddr6 + "]:8081/"},
		{"outside over IPv4", "outside", "http://" + hostAddr + ":8081/"},
		{"client through its gateway", "dualstack-client", "http://[" + strings.TrimSuffix(h.addr6Of("dualstack-client", "eth0"), "3") + "1]:8081/"},
	} {
		if out, ok := h.sh(in(c.ns, "curl -sS -o /dev/null -w %{http_code} --max-time 3 "+c.url)); ok {
			t.Errorf("%s reached the [::1] publish at %s: %q", c.who, c.url, out)
		}
	}
}

// checkV6Only checks examples/dualstack's IPv6-only network v6only and
// probe6 on it alone: IPv6 and no IPv4 there (address, route, A record),
// web reached by name over it, AAAA and PTR of it, its "8090:80" on [::]
// alone from the outside host, NAT out over IPv6, and IPv4 sent through
// its bridge dropped (the rule's counter).
func (h *host) checkV6Only(file string) {
	t := h.t
	t.Helper()
	probe, web := h.addr6Of("dualstack-probe6", "eth0"), h.addr6Of("dualstack-web", "eth2")
	if !strings.HasPrefix(probe, "fd42:3::") || !strings.HasPrefix(web, "fd42:3::") {
		t.Errorf("v6only: probe6 has %q, web %q; want addresses of fd42:3::/64", probe, web)
	}
	for _, c := range []string{"ip -n dualstack-probe6 -4 addr show dev eth0", "ip -n dualstack-probe6 -4 route", "ip -n dualstack-web -4 addr show dev eth2"} {
		if out := strings.TrimSpace(h.mustSh(c)); out != "" {
			t.Errorf("IPv6-only network, yet %s:\n%s", c, out)
		}
	}
	var v6 view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "v6only", "--json")), &v6); err != nil {
		t.Fatal(err)
	}
	if v6.Subnet != "" || v6.Gateway != "" || v6.Subnet6 != "fd42:3::/64" || v6.Gateway6 != "fd42:3::1" {
		t.Errorf("inspect v6only: subnet %q gateway %q, subnet6 %q gateway6 %q; want IPv6's alone", v6.Subnet, v6.Gateway, v6.Subnet6, v6.Gateway6)
	}
	if ps := h.mustTopo("ps", "-f", file); !strings.Contains(ps, "v6only="+probe+"/64 ") || !strings.Contains(ps, " [::]:8090->80/tcp ") || strings.Contains(ps, "0.0.0.0:8090") {
		t.Errorf("ps shows not probe6's v6only=%s/64 and [::]:8090->80/tcp alone:\n%s", probe, ps)
	}

	dig := func(args string) string {
		return strings.TrimSpace(h.mustSh(in("dualstack-probe6", "dig +short +time=2 +tries=3 @127.0.0.11 "+args)))
	}
	if got := dig("AAAA web"); got != web {
		t.Errorf("probe6: AAAA web = %q, want %s (the network they share)", got, web)
	}
	if got := dig("A web"); got != "" {
		t.Errorf("probe6: A web = %q; v6only has no IPv4", got)
	}
	if got := dig("-x " + web); got != "web.v6only." {
		t.Errorf("probe6: PTR of %s = %q, want web.v6only.", web, got)
	}
	if out, ok := h.sh(in("dualstack-probe6", "curl -sS -6 -o /dev/null -w %{http_code} --max-time 5 http://web/")); !ok || out != "200" {
		t.Errorf("probe6: curl -6 http://web/ over v6only: %q", out)
	}
	if out, ok := h.sh(pingCmd("dualstack-probe6", outsideAddr6, true)); !ok {
		t.Errorf("probe6 did not reach the outside host over IPv6 (NAT out):\n%s", out)
	}
	if out, ok := h.sh(pingCmd("dualstack-probe6", h.addr6Of("dualstack-client", "eth0"), false)); ok {
		t.Errorf("probe6 reached client, on another network:\n%s", out)
	}

	// "8090:80" of a container with no IPv4: [::] alone, as Docker 27.
	if ports := strings.TrimSpace(h.mustTopo("port", "-f", file, "probe6")); ports != "80/tcp -> [::]:8090" {
		t.Errorf("topo port probe6:\n%s\nwant 80/tcp -> [::]:8090 alone", ports)
	}
	h.waitFor("probe6's http.server to listen on 80", func() bool {
		out, _ := h.sh(in("dualstack-probe6", "ss -ltnH sport = :80"))
		return strings.TrimSpace(out) != ""
	})
	if out, ok := h.sh(in("outside", "curl -sS -6 -o /dev/null -w %{http_code} --retry 5 --retry-connrefused --retry-delay 1 http://["+hostAddr6+"]:8090/")); !ok || out != "200" {
		t.Errorf("outside -> [%s]:8090: curl says %q", hostAddr6, out)
	}
	if _, ok := h.tcpReach("outside", hostAddr, 8090, false); ok {
		t.Errorf("outside reached %s:8090 over IPv4; probe6 has no IPv4", hostAddr)
	}

	// IPv4 a container sends through the bridge anyway goes nowhere:
	// the bridge's drop counts it.
	drops := func() int {
		for _, l := range strings.Split(h.mustSh("iptables -t filter -L TOPO-ISOLATION -v -x -n"), "\n") {
			if f := strings.Fields(l); len(f) > 5 && f[2] == "DROP" && f[5] == v6.Bridge {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
		t.Fatalf("no IPv4 drop of bridge %s in TOPO-ISOLATION:\n%s", v6.Bridge, h.mustSh("iptables-save -t filter"))
		return 0
	}
	before := drops()
	h.mustSh(`ip -n dualstack-probe6 addr add 192.0.2.50/24 dev eth0
ip -n dualstack-probe6 route add default via ` + hostAddr + ` dev eth0 onlink`)
	h.sh(pingCmd("dualstack-probe6", outsideAddr, false))
	if after := drops(); after <= before {
		t.Errorf("IPv4 from probe6 through v6only's bridge: drop counter %d, was %d; want it dropped", after, before)
	}
	h.mustSh(`ip -n dualstack-probe6 addr del 192.0.2.50/24 dev eth0`)
}

// TestIPv6OnlyInPlace: a running dual-stack network made IPv6-only
// (enable_ipv4: false) loses its IPv4 addresses and routes, keeps IPv6
// traffic, restarts nothing; given IPv4 back, it has it again.
func TestIPv6OnlyInPlace(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	src := func(net string) string {
		return "name: sixonly\nnetworks:\n  lan: " + net + "\ncontainers:\n" +
			"  a:\n    networks: [lan]\n    command: [\"sleep\", \"3600\"]\n  b: {networks: [lan]}\n"
	}
	dual, only := `{subnet: [10.83.0.0/24, "fd42:83::/64"]}`, `{enable_ipv4: false, subnet: "fd42:83::/64"}`
	file := writeFile(t, "sixonly", src(dual))
	h.mustTopo("up", "-f", file)
	pid := func() string { return strings.TrimSpace(h.mustSh("jq .pid /run/topo/sixonly/containers/a.pid")) }
	before := pid()

	if err := os.WriteFile(file, []byte(src(only)), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || strings.Contains(plan, "ip netns") || strings.Contains(plan, "kill ") || strings.Contains(plan, "link add") ||
		!strings.Contains(plan, "ip -n sixonly-a addr del 10.83.0.2/24 dev eth0") || !strings.Contains(plan, "-j DROP") {
		t.Errorf("plan of enable_ipv4: false: exit %d, want the IPv4 addresses gone, drops, nothing made again:\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	if after := pid(); after != before {
		t.Errorf("a's command restarted: pid %s, was %s", after, before)
	}
	for _, c := range []string{"ip -n sixonly-a -4 addr show dev eth0", "ip -n sixonly-a -4 route"} {
		if out := strings.TrimSpace(h.mustSh(c)); out != "" {
			t.Errorf("made IPv6-only, yet %s:\n%s", c, out)
		}
	}
	if out, ok := h.sh(pingCmd("sixonly-a", "fd42:83::3", true)); !ok {
		t.Errorf("a does not reach b over IPv6 after the change:\n%s", out)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes", code)
	}

	if err := os.WriteFile(file, []byte(src(dual)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := h.sh(pingCmd("sixonly-a", "10.83.0.3", true)); !ok {
		t.Errorf("IPv4 given back, a does not reach b over it:\n%s", out)
	}
	if after := pid(); after != before {
		t.Errorf("a's command restarted: pid %s, was %s", after, before)
	}
	h.mustTopo("down", "-f", file)
	if left := h.leftovers("sixonly"); strings.TrimSpace(left) != "" {
		t.Errorf("down left:\n%s", left)
	}
}

// TestLoopback6PortTaken: a host port on ::1 that a process of the host
// holds stops up before any step, at the publish's line, naming it.
func TestLoopback6PortTaken(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	cmd := h.Command("socat", "TCP6-LISTEN:18081,bind=[::1],fork,reuseaddr", "SYSTEM:echo taken")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	h.waitFor("socat to listen on [::1]:18081", func() bool { return strings.TrimSpace(h.mustSh("ss -ltnH sport = :18081")) != "" })
	file := writeFile(t, "lo6", "name: lo6\nnetworks:\n  lan: {subnet: [10.84.0.0/24, \"fd42:84::/64\"]}\ncontainers:\n  web:\n    networks: [lan]\n    ports: [\"[::1]:18081:80\"]\n")
	out, errOut, code := h.topo("up", "-f", file)
	if code != 1 || !strings.Contains(errOut, `:7:13: container web: port "[::1]:18081:80": failed to bind host port [::1]:18081/tcp: address already in use: socat (pid `) {
		t.Errorf("up with [::1]:18081 taken: exit %d\n%s\n%s\nwant exit 1 and the holder named at the line", code, out, errOut)
	}
	if left := h.leftovers("lo6"); strings.TrimSpace(left) != "" {
		t.Errorf("a refused up left:\n%s", left)
	}
}

// TestLoopback6ToIPv4Only: a publish on [::1] of a container whose
// network has no IPv6 is forwarded by the resolver's proxy to its IPv4
// address, as docker-proxy does: TCP and UDP from the host's ::1 reach
// it, the proxy listens on ::1 alone, and down takes it away.
func TestLoopback6ToIPv4Only(t *testing.T) {
	need(t, "curl", "ss", "socat")
	h := newHost(t)
	file := writeFile(t, "lo4", `name: lo4
networks:
  lan: {subnet: 10.85.0.0/24}
containers:
  web:
    networks: [lan]
    ports: ["[::1]:18082:80", "[::1]:18083:5300/udp"]
`)
	h.mustTopo("up", "-f", file)
	h.serve("lo4-web", 80, "tcp", "socat", "TCP4-LISTEN:80,fork,reuseaddr", "SYSTEM:echo HTTP/1.0 200 OK; echo")
	h.serve("lo4-web", 5300, "udp", "socat", "UDP4-RECVFROM:5300,fork", "EXEC:cat")
	if out, ok := h.sh("curl -sS -6 -o /dev/null -w %{http_code} --retry 5 --retry-connrefused --retry-delay 1 http://[::1]:18082/"); !ok || out != "200" {
		t.Errorf("host -> [::1]:18082 (the proxy to web's IPv4 address): curl says %q", out)
	}
	if out, ok := h.sh("for i in 1 2 3 4 5; do r=$(echo udp-ok | socat -t 2 - UDP6:[::1]:18083) && [ -n \"$r\" ] && { echo \"$r\"; exit 0; }; done; exit 1"); !ok || strings.TrimSpace(out) != "udp-ok" {
		t.Errorf("host -> [::1]:18083/udp (the proxy to web's IPv4 address): %q", out)
	}
	if ln := strings.Fields(h.mustSh("ss -ltnH sport = :18082")); len(ln) < 4 || ln[3] != "[::1]:18082" {
		t.Errorf("host's listeners on 18082: %v, want [::1]:18082 alone", ln)
	}
	if ports := h.mustTopo("port", "-f", file, "web"); !strings.Contains(ports, "80/tcp -> [::1]:18082") || !strings.Contains(ports, "5300/udp -> [::1]:18083") {
		t.Errorf("topo port web:\n%s\nwant 80/tcp on [::1]:18082 and 5300/udp on [::1]:18083", ports)
	}
	if plan := h.mustTopo("plan", "-f", file); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after up is not empty:\n%s", plan)
	}
	h.mustTopo("down", "-f", file)
	if out := strings.TrimSpace(h.mustSh("ss -ltnH sport = :18082")); out != "" {
		t.Errorf("down left a listener on 18082: %s", out)
	}
	if left := h.leftovers("lo4"); strings.TrimSpace(left) != "" {
		t.Errorf("down left:\n%s", left)
	}
}
