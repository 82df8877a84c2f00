package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/topolab/topo/view"
)

// Addresses of the outside host's IPv6 link to the sandbox host (see
// outside6).
const (
	hostAddr6    = "fd00:198::1"
	outsideAddr6 = "fd00:198::2"
)

// outside6 makes the namespace "outside" (see outside) and gives its link
// to the host IPv6 addresses too, at once usable (nodad).
func (h *host) outside6() {
	h.t.Helper()
	h.outside()
	h.mustSh(`ip addr add ` + hostAddr6 + `/64 dev vout nodad
ip -n outside addr add ` + outsideAddr6 + `/64 dev eth0 nodad`)
}

// addr6Of is the IPv6 address (no prefix length) of a container's
// interface, as ip shows it.
func (h *host) addr6Of(ns, ifname string) string {
	h.t.Helper()
	for _, l := range h.links(ns) {
		if l.Name != ifname {
			continue
		}
		for _, a := range l.AddrInfo {
			if a.Family == "inet6" && !strings.HasPrefix(a.Local, "fe80:") {
				return a.Local
			}
		}
	}
	return ""
}

// TestDualStack brings examples/dualstack up and sends real IPv6 traffic:
// TCP and UDP between containers by address and by name (AAAA from the
// embedded DNS), publishes on [::] from an outside host, isolation of
// networks and of the internal one, NAT out, DNS AAAA and PTR answers;
// then down leaves nothing, in ip6tables either.
func TestDualStack(t *testing.T) {
	need(t, "socat", "ss", "dig", "ip6tables-save")
	h := newHost(t)
	h.outside6()
	file := example("dualstack")
	h.mustTopo("up", "-f", file)
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan right after up: exit %d, want no changes:\n%s", code, out)
	}

	// The file's addresses, and the automatic ones in order.
	web, db := h.addr6Of("dualstack-web", "eth1"), h.addr6Of("dualstack-db", "eth0")
	if web != "fd42:2::10" || db != "fd42:2::2" {
		t.Errorf("back: web has %q, db %q; want fd42:2::10 (fixed) and fd42:2::2 (the first after the gateway)", web, db)
	}
	webFront, client := h.addr6Of("dualstack-web", "eth0"), h.addr6Of("dualstack-client", "eth0")
	if !strings.HasPrefix(webFront, "fd") || !strings.HasSuffix(webFront, "::2") || !strings.HasSuffix(client, "::3") {
		t.Errorf("front: web %q, client %q; want ::2 and ::3 of a /64 of the host's ULA prefix", webFront, client)
	}
	routes := h.mustSh("ip -n dualstack-web -6 route show default")
	gw6 := strings.TrimSuffix(webFront, "2") + "1"
	if !strings.Contains(routes, "default via "+gw6+" dev eth0") {
		t.Errorf("web's IPv6 default route: %q, want via %s dev eth0", routes, gw6)
	}
	if out := h.mustSh("ip -n dualstack-web -6 addr show tentative"); strings.TrimSpace(out) != "" {
		t.Errorf("web has addresses still in duplicate address detection after up:\n%s", out)
	}

	h.serve("dualstack-web", 9000, "tcp", "socat", "TCP6-LISTEN:9000,fork,reuseaddr,ipv6only=0", "SYSTEM:echo hello-v6")
	h.serve("dualstack-web", 443, "tcp", "socat", "TCP6-LISTEN:443,fork,reuseaddr,ipv6only=0", "SYSTEM:echo hello-443")
	h.serve("dualstack-web", 5300, "udp", "socat", "UDP6-RECVFROM:5300,fork,ipv6only=0", "EXEC:cat")
	reach := func(who, ns, addr string, port int, want bool, answer string) {
		t.Helper()
		got, ok := h.tcpReach(ns, addr, port, want)
		if ok != want || ok && got != answer {
			t.Errorf("%s -> %s:%d: got %q (reached %v), want reached %v", who, addr, port, got, ok, want)
		}
	}
	// Container to container, on each network, by address and by name.
	reach("client", "dualstack-client", "["+webFront+"]", 9000, true, "hello-v6")
	reach("db", "dualstack-db", "[fd42:2::10]", 9000, true, "hello-v6")
	h.waitFor("web's http.server to listen on 80", func() bool {
		out, _ := h.sh(in("dualstack-web", "ss -ltnH sport = :80"))
		return strings.TrimSpace(out) != ""
	})
	if out, ok := h.sh(in("dualstack-client", "curl -sS -6 -o /dev/null -w %{http_code} --max-time 5 http://web/")); !ok || out != "200" {
		t.Errorf("client: curl -6 http://web/ (by name, AAAA): %q", out)
	}
	if got := h.reply("dualstack-client", "web", 9000); got != "hello-v6" {
		t.Errorf("client -> web:9000 by name: %q", got)
	}
	if out, ok := h.sh(in("dualstack-client", "socat -T2 - TCP6:web:9000,connect-timeout=2 </dev/null")); !ok || strings.TrimSpace(out) != "hello-v6" {
		t.Errorf("client -> web:9000 over IPv6 by name (AAAA): %q", out)
	}
	if got := h.udpEcho("dualstack-db", "[fd42:2::10]", 5300, "ping-v6"); got != "ping-v6" {
		t.Errorf("UDP db -> [fd42:2::10]:5300: %q", got)
	}
	// Networks are apart: client (front) does not reach db on back.
	if out, ok := h.sh(pingCmd("dualstack-client", db, false)); ok {
		t.Errorf("client reached db (%s) on another network:\n%s", db, out)
	}
	reach("client", "dualstack-client", "[fd42:2::10]", 9000, false, "")
	// The internal network reaches nothing outside, even with a route.
	h.mustSh("ip -n dualstack-vault -6 route add default via fd42:4::1")
	if out, ok := h.sh(pingCmd("dualstack-vault", outsideAddr6, false)); ok {
		t.Errorf("vault, on an internal network, reached the outside host:\n%s", out)
	}
	if out, ok := h.sh(pingCmd("dualstack-vault", "fd42:4::1", false)); ok {
		t.Errorf("vault, on an internal network, reached the host through its gateway:\n%s", out)
	}
	// NAT out: the outside host answers client, masqueraded.
	if out, ok := h.sh(pingCmd("dualstack-client", outsideAddr6, true)); !ok {
		t.Errorf("client did not reach the outside host over IPv6:\n%s", out)
	}

	// Publishes: 8080 on 0.0.0.0 answers on [::] too; [::]::443 on IPv6.
	ports := h.mustTopo("port", "-f", file, "web")
	random := 0
	for _, l := range strings.Split(strings.TrimSpace(ports), "\n") {
		if strings.HasPrefix(l, "443/tcp -> [::]:") {
			fmt.Sscanf(strings.TrimPrefix(l, "443/tcp -> [::]:"), "%d", &random)
		}
	}
	if !strings.Contains(ports, "80/tcp -> 0.0.0.0:8080") || !strings.Contains(ports, "80/tcp -> [::]:8080") || !strings.Contains(ports, "80/tcp -> [::1]:8081") || random < 32768 || strings.Contains(ports, "443/tcp -> 0.0.0.0") {
		t.Fatalf("topo port web:\n%s\nwant 80/tcp on 0.0.0.0:8080, [::]:8080 and [::1]:8081, 443/tcp on [::] and a free port", ports)
	}
	reach("outside", "outside", "["+hostAddr6+"]", random, true, "hello-443")
	if out, ok := h.sh(in("outside", "curl -sS -6 -o /dev/null -w %{http_code} --retry 5 --retry-connrefused --retry-delay 1 http://["+hostAddr6+"]:8080/")); !ok || out != "200" {
		t.Errorf("outside -> [%s]:8080 (0.0.0.0:8080 answers on [::]): curl says %q", hostAddr6, out)
	}
	if out, ok := h.sh(in("outside", "curl -sS -4 -o /dev/null -w %{http_code} --retry 5 --retry-connrefused --retry-delay 1 http://"+hostAddr+":8080/")); !ok || out != "200" {
		t.Errorf("outside -> %s:8080 over IPv4: curl says %q", hostAddr, out)
	}
	reach("outside", "outside", hostAddr, random, false, "") // [::] only
	h.checkLoopback6(file)
	h.checkV6Only(file)

	// DNS: AAAA of names and aliases, PTR of an IPv6 address.
	dig := func(ns, args string) string {
		return strings.TrimSpace(h.mustSh(in(ns, "dig +short +time=2 +tries=3 @127.0.0.11 "+args)))
	}
	if got := dig("dualstack-client", "AAAA web"); got != webFront {
		t.Errorf("client: AAAA web = %q, want %s", got, webFront)
	}
	if got := dig("dualstack-client", "AAAA www"); got != webFront {
		t.Errorf("client: AAAA www (alias) = %q, want %s", got, webFront)
	}
	if got := dig("dualstack-db", "AAAA web"); got != "fd42:2::10" {
		t.Errorf("db: AAAA web = %q, want fd42:2::10 (the network they share)", got)
	}
	if got := dig("dualstack-db", "-x fd42:2::10"); got != "web.back." {
		t.Errorf("db: PTR of fd42:2::10 = %q, want web.back.", got)
	}
	if got := dig("dualstack-client", "AAAA db"); got != "" {
		t.Errorf("client: AAAA db = %q; db shares no network with client", got)
	}

	// /etc/hosts has the IPv6 addresses too, as getent sees them.
	if hosts := h.mustSh("cat /etc/netns/dualstack-web/hosts"); !strings.Contains(hosts, "fd42:2::10\tweb") || !strings.Contains(hosts, webFront+"\tweb") {
		t.Errorf("web's hosts file has not its IPv6 addresses:\n%s", hosts)
	}
	if got := strings.Fields(h.mustSh(in("dualstack-web", "getent ahostsv6 web"))); len(got) == 0 || (got[0] != webFront && got[0] != "fd42:2::10") {
		t.Errorf("getent ahostsv6 web in web: %v", got)
	}

	// ps and inspect show IPv6.
	var front view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "front", "--json")), &front); err != nil {
		t.Fatal(err)
	}
	if front.Gateway6 != gw6 || len(front.Members) != 2 || front.Members[0].Address6 != webFront+"/64" {
		t.Errorf("inspect front: gateway6 %q, members %+v", front.Gateway6, front.Members)
	}
	if ps := h.mustTopo("ps", "-f", file); !strings.Contains(ps, "back=10.42.2.2/24+fd42:2::10/64") {
		t.Errorf("ps:\n%s", ps)
	}

	h.mustTopo("down", "-f", file)
	h.mustSh("ip netns del outside")
	if left := h.leftovers("dualstack"); strings.TrimSpace(left) != "" {
		t.Errorf("down left:\n%s", left)
	}
	if rules := h.mustSh("ip6tables-save | grep -c TOPO || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("down left ip6tables rules:\n%s", h.mustSh("ip6tables-save"))
	}
	if fw := h.mustSh("cat /proc/sys/net/ipv6/conf/all/forwarding"); strings.TrimSpace(fw) != "0" {
		t.Errorf("down left IPv6 forwarding on: %s", fw)
	}
}

// TestIPv6InPlace: enable_ipv6 added to a running network adds the
// addresses, routes and rules, and restarts nothing; taken away, they go.
func TestIPv6InPlace(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	src := func(extra string) string {
		return "name: six\nnetworks:\n  lan: {subnet: 10.82.0.0/24" + extra + "}\ncontainers:\n" +
			"  a:\n    networks: [lan]\n    command: [\"sleep\", \"3600\"]\n  b: {networks: [lan]}\n"
	}
	file := writeFile(t, "six", src(""))
	h.mustTopo("up", "-f", file)
	pid := func() string { return strings.TrimSpace(h.mustSh("jq .pid /run/topo/six/containers/a.pid")) }
	before := pid()
	if got := h.addr6Of("six-a", "eth0"); got != "" {
		t.Fatalf("IPv4-only network: a has IPv6 address %s", got)
	}

	if err := os.WriteFile(file, []byte(strings.Replace(src(""), "subnet: 10.82.0.0/24", `subnet: [10.82.0.0/24, "fd42:82::/64"]`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || strings.Contains(plan, "ip netns") || strings.Contains(plan, "kill ") || strings.Contains(plan, "  - ") ||
		!strings.Contains(plan, "ip addr add fd42:82::1/64 dev ") || !strings.Contains(plan, "ip -n six-b addr add fd42:82::3/64 dev eth0 nodad") ||
		!strings.Contains(plan, "ip -n six-a route add ::/0 via fd42:82::1") || !strings.Contains(plan, "ip6tables -t filter") {
		t.Errorf("plan of adding IPv6: exit %d, want addresses, routes and ip6tables rules added, nothing made again:\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	if after := pid(); after != before {
		t.Errorf("a's command restarted: pid %s, was %s", after, before)
	}
	if out, ok := h.sh(pingCmd("six-a", "fd42:82::3", true)); !ok {
		t.Errorf("a does not reach b over IPv6 after the change:\n%s", out)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes", code)
	}

	// Taken away again: the IPv6 addresses and rules go, a keeps running.
	if err := os.WriteFile(file, []byte(src("")), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if got := h.addr6Of("six-b", "eth0"); got != "" {
		t.Errorf("IPv6 removed from the file, b still has %s", got)
	}
	if rules := h.mustSh("ip6tables-save | grep -c TOPO || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("IPv6 removed from the file, ip6tables still has topo's rules:\n%s", h.mustSh("ip6tables-save"))
	}
	if after := pid(); after != before {
		t.Errorf("a's command restarted: pid %s, was %s", after, before)
	}
	h.mustTopo("down", "-f", file)
}
