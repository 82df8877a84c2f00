package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// dnsFile: web is on front (aliases www, api) and back; api2 shares the
// alias api on front; db is alone with web on the internal back; lone is on
// a network of its own; probe shares web's namespace.
const dnsFile = `name: dns
networks:
  front: {subnet: 10.77.1.0/24}
  back: {subnet: 10.77.2.0/24, internal: true}
  other: {subnet: 10.77.3.0/24}
containers:
  web:
    hostname: web.example
    networks:
      front: {aliases: [www, api]}
      back: {}
  api2:
    networks:
      front: {aliases: [api]}
  db:
    networks:
      back: {aliases: [database]}
  lone:
    networks: [other]
  probe:
    network_mode: container:web
`

// newDNSHost is a sandbox whose "upstream" resolver is a dnsmasq on the
// sandbox's own 127.0.0.1 that knows upstream.test: its resolv.conf is
// bound over /etc/resolv.conf there, so that forwarding is tested without
// the real network.
func newDNSHost(t *testing.T) *host {
	t.Helper()
	for _, tool := range []string{"dig", "getent", "dnsmasq", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/deps installs it)", tool)
		}
	}
	h := newHost(t)
	h.mustSh(`echo nameserver 127.0.0.1 > /run/resolv.upstream && mount --bind /run/resolv.upstream /etc/resolv.conf &&
dnsmasq --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --address=/upstream.test/192.0.2.99 --pid-file=/run/upstream.pid`)
	return h
}

// dig asks the embedded resolver from inside container c's namespace and
// returns the answers, sorted; args are dig's (name, type, +tcp…).
func (h *host) dig(c string, args ...string) []string {
	h.t.Helper()
	out := h.mustSh("ip netns exec dns-" + c + " dig +short +tries=1 +time=2 @127.0.0.11 " + strings.Join(args, " "))
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return nil
	}
	sort.Strings(lines)
	return lines
}

// digStatus returns the rcode dig reports, as NOERROR or NXDOMAIN.
func (h *host) digStatus(c string, args ...string) string {
	h.t.Helper()
	out := h.mustSh("ip netns exec dns-" + c + " dig +tries=1 +time=2 @127.0.0.11 " + strings.Join(args, " "))
	i := strings.Index(out, "status: ")
	if i < 0 {
		h.t.Fatalf("dig %v: no status:\n%s", args, out)
	}
	return strings.TrimSuffix(strings.Fields(out[i+len("status: "):])[0], ",")
}

func TestDNSNamesAliasesAndNetworks(t *testing.T) {
	h := newDNSHost(t)
	file := writeFile(t, "dns", dnsFile)
	h.mustTopo("up", "-f", file)

	cases := []struct {
		from string
		args []string
		want []string
	}{
		{"api2", []string{"web"}, []string{"10.77.1.2"}},
		{"api2", []string{"www"}, []string{"10.77.1.2"}},
		{"api2", []string{"web.example"}, []string{"10.77.1.2"}},
		{"api2", []string{"WeB.FrOnT"}, []string{"10.77.1.2"}},
		{"api2", []string{"www.front"}, []string{"10.77.1.2"}},
		// A shared alias gives every holder, over UDP and TCP.
		{"api2", []string{"api"}, []string{"10.77.1.2", "10.77.1.3"}},
		{"web", []string{"+tcp", "api"}, []string{"10.77.1.2", "10.77.1.3"}},
		{"web", []string{"+tcp", "db"}, []string{"10.77.2.3"}},
		// web is on both networks: each side finds it at its own address.
		{"db", []string{"web"}, []string{"10.77.2.2"}},
		{"db", []string{"web.back"}, []string{"10.77.2.2"}},
		{"api2", []string{"+tcp", "web"}, []string{"10.77.1.2"}},
		{"web", []string{"web"}, []string{"10.77.1.2", "10.77.2.2"}},
		// Names not shared: nothing.
		{"db", []string{"www"}, nil},
		{"db", []string{"api2"}, nil},
		{"api2", []string{"db"}, nil},
		{"api2", []string{"database"}, nil},
		{"lone", []string{"web"}, nil},
		{"lone", []string{"+tcp", "api"}, nil},
		// PTR names the container on the asker's network.
		{"web", []string{"-x", "10.77.1.3"}, []string{"api2.front."}},
		{"db", []string{"-x", "10.77.2.2"}, []string{"web.back."}},
		{"api2", []string{"+tcp", "-x", "10.77.1.2"}, []string{"web.front."}},
		// A known name with no record of the type: no answer.
		{"api2", []string{"web", "AAAA"}, nil},
		// Other names go upstream, but not from a container that only has
		// internal networks.
		{"api2", []string{"upstream.test"}, []string{"192.0.2.99"}},
		{"lone", []string{"+tcp", "upstream.test"}, []string{"192.0.2.99"}},
		{"db", []string{"upstream.test"}, nil},
	}
	for _, c := range cases {
		if got := h.dig(c.from, c.args...); cmp.Diff(c.want, got) != "" {
			t.Errorf("%s: dig %s = %v, want %v", c.from, strings.Join(c.args, " "), got, c.want)
		}
	}
	if s := h.digStatus("api2", "web", "AAAA"); s != "NOERROR" {
		t.Errorf("AAAA of a known name: %s, want NOERROR", s)
	}
	if s := h.digStatus("db", "upstream.test"); s != "SERVFAIL" {
		t.Errorf("unknown name from an internal-only container: %s, want SERVFAIL (no forwarding)", s)
	}
	if s := h.digStatus("lone", "web"); s == "NOERROR" {
		t.Errorf("web from lone: %s, want an error status", s)
	}

	// Through the container's resolv.conf and hosts: getent, with ip netns
	// exec and with topo exec.
	if out := h.mustSh("ip netns exec dns-api2 getent hosts web"); !strings.HasPrefix(out, "10.77.1.2 ") {
		t.Errorf("getent hosts web from api2: %q", out)
	}
	if out := h.mustSh("ip netns exec dns-api2 getent ahostsv4 api | awk '{print $1}' | sort -u"); out != "10.77.1.2\n10.77.1.3\n" {
		t.Errorf("getent ahostsv4 api from api2: %q", out)
	}
	if out := h.mustTopo("exec", "-f", file, "db", "--", "getent", "hosts", "web.example"); !strings.HasPrefix(out, "10.77.2.2 ") {
		t.Errorf("topo exec db getent hosts web.example: %q", out)
	}
	if out, ok := h.sh("ip netns exec dns-lone getent hosts web"); ok {
		t.Errorf("lone resolves web: %q", out)
	}
	// The hosts file gives the container its own names and localhost.
	if out := h.mustTopo("exec", "-f", file, "web", "--", "getent", "hosts", "probe"); !strings.HasPrefix(out, "10.77.1.2 ") || !strings.Contains(out, " probe") {
		t.Errorf("getent hosts probe in web: %q", out)
	}
	if out := h.mustSh("ip netns exec dns-api2 getent hosts localhost"); !strings.Contains(out, "localhost") {
		t.Errorf("getent hosts localhost: %q", out)
	}

	// The resolver listens only inside containers: nothing of topo's on
	// the host, where only the fake upstream listens.
	if out := h.mustSh("ss -Hlnup; ss -Hlntp"); strings.Contains(out, "127.0.0.11") || strings.Contains(out, "topo") {
		t.Errorf("topo listens on the host:\n%s", out)
	}
	if out := h.mustSh("ip netns exec dns-web ss -Hlnu; ip netns exec dns-web ss -Hlnt"); strings.Count(out, "127.0.0.11:53") != 2 {
		t.Errorf("listeners in dns-web:\n%s", out)
	}
	if out := h.mustTopo("plan", "-f", file); !strings.Contains(out, "No changes") {
		t.Errorf("plan after up:\n%s", out)
	}
	// One resolver process, which assertNoDNS must not find after down.
	if out, _ := h.sh("pgrep -af 'resolver serv[e]'"); strings.Count(out, "\n") != 1 {
		t.Errorf("resolver processes after up:\n%s", out)
	}
	h.mustTopo("down", "-f", file)
	assertNoDNS(t, h, "dns")
}

// assertNoDNS fails when a resolver process or a file of the project is
// left.
func assertNoDNS(t *testing.T, h *host, project string) {
	t.Helper()
	if out, _ := h.sh("pgrep -af 'resolver serv[e]'"); strings.TrimSpace(out) != "" {
		t.Errorf("resolver left running:\n%s", out)
	}
	if out, _ := h.sh("find /etc/netns /run/topo 2>/dev/null"); strings.Contains(out, project) {
		t.Errorf("files left:\n%s", out)
	}
	assertClean(t, h, project)
}

func TestDNSNewContainerWhileQuerying(t *testing.T) {
	h := newDNSHost(t)
	file := writeFile(t, "dns", dnsFile)
	h.mustTopo("up", "-f", file)

	// Queries from api2 and db, UDP and TCP, all through the second up.
	loop := h.Command("sh", "-c", `ok=0; bad=0
while [ ! -e /run/stop-loop ]; do
  for q in "dns-api2 web 10.77.1.2" "dns-db +tcp web 10.77.2.2"; do
    set -- $q; ns=$1; shift; want=$(eval echo \${$#})
    got=$(ip netns exec $ns dig +short +tries=1 +time=2 @127.0.0.11 $(echo "$@" | sed 's/ [^ ]*$//'))
    if [ "$got" = "$want" ]; then ok=$((ok+1)); echo >> /run/loop-ok; else bad=$((bad+1)); echo "bad: $ns $*: $got" >&2; fi
  done
done
echo "$ok $bad"`)
	var out, errOut strings.Builder
	loop.Stdout, loop.Stderr = &out, &errOut
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	// answered waits until the loop has answered n queries in all.
	answered := func(n int) {
		t.Helper()
		h.waitFor(fmt.Sprintf("%d answers", n), func() bool {
			out, _ := h.sh("wc -l < /run/loop-ok")
			got, _ := strconv.Atoi(strings.TrimSpace(out))
			return got >= n
		})
	}
	answered(5)
	added := strings.Replace(dnsFile, "  lone:\n", "  new:\n    networks:\n      front: {aliases: [fresh]}\n  lone:\n", 1)
	if err := os.WriteFile(file, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := h.mustTopo("plan", "-f", file)
	if strings.Contains(plan, "resolver start") || strings.Contains(plan, "resolver stop") {
		t.Errorf("adding a container restarts the resolver:\n%s", plan)
	}
	h.mustTopo("up", "-f", file)
	before, _ := h.sh("wc -l < /run/loop-ok")
	n, _ := strconv.Atoi(strings.TrimSpace(before))
	answered(n + 5)
	h.mustSh("touch /run/stop-loop")
	if err := loop.Wait(); err != nil {
		t.Fatalf("query loop: %v\n%s", err, errOut.String())
	}
	var ok, bad int
	fmt.Sscan(out.String(), &ok, &bad)
	if bad != 0 || ok < 10 {
		t.Errorf("queries during the second up: %d answered, %d failed\n%s", ok, bad, errOut.String())
	}
	t.Logf("queries during the second up: %d answered, %d failed", ok, bad)

	for _, c := range []struct {
		from, name string
		want       []string
	}{
		{"api2", "new", []string{"10.77.1.4"}},
		{"api2", "fresh", []string{"10.77.1.4"}},
		{"new", "web", []string{"10.77.1.2"}},
		{"new", "api", []string{"10.77.1.2", "10.77.1.3"}},
		{"db", "new", nil},
	} {
		if got := h.dig(c.from, c.name); cmp.Diff(c.want, got) != "" {
			t.Errorf("%s: dig %s = %v, want %v", c.from, c.name, got, c.want)
		}
	}
	if out := h.mustSh("ip netns exec dns-web getent hosts new"); !strings.HasPrefix(out, "10.77.1.4 ") {
		t.Errorf("getent hosts new from web: %q", out)
	}

	// Removing it again: its files go, its name stops resolving.
	os.WriteFile(file, []byte(dnsFile), 0o644)
	h.mustTopo("up", "-f", file)
	if got := h.dig("api2", "new"); len(got) != 0 {
		t.Errorf("removed container still resolves: %v", got)
	}
	if out, _ := h.sh("ls /etc/netns"); strings.Contains(out, "dns-new") {
		t.Errorf("/etc/netns/dns-new left:\n%s", out)
	}
	h.mustTopo("down", "-f", file)
	assertNoDNS(t, h, "dns")
}

func TestDNSResolverDriftIsRepaired(t *testing.T) {
	h := newDNSHost(t)
	file := writeFile(t, "dns", dnsFile)
	h.mustTopo("up", "-f", file)

	// Killed by hand: drift in plan, up brings it back.
	h.mustSh(`kill -9 $(sed 's/.*"pid":\([0-9]*\).*/\1/' /run/topo/dns/resolver.pid)`)
	if out, ok := h.sh("ip netns exec dns-api2 dig +short +tries=1 +time=1 @127.0.0.11 web"); ok {
		t.Fatalf("a killed resolver answers: %s", out)
	}
	out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || cmp.Diff([]string{"  + topo resolver start -p dns  # dns resolver"}, stepLines(out)) != "" {
		t.Errorf("plan after killing the resolver: exit %d\n%s", code, out)
	}
	h.mustTopo("up", "-f", file)
	if got := h.dig("api2", "+tcp", "www"); cmp.Diff([]string{"10.77.1.2"}, got) != "" {
		t.Errorf("www after the repair: %v", got)
	}

	// Stale records: the resolver is made to load other ones by hand.
	h.mustSh(`sed -i 's/"www"/"xyz"/' /run/topo/dns/dns.json && kill -HUP $(sed 's/.*"pid":\([0-9]*\).*/\1/' /run/topo/dns/resolver.pid)`)
	h.waitFor("the resolver to serve the hand-made records", func() bool {
		return cmp.Diff([]string{"10.77.1.2"}, h.dig("api2", "xyz")) == ""
	})
	out, _, code = h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || cmp.Diff([]string{"  ~ topo resolver load -p dns  # dns resolver"}, stepLines(out)) != "" {
		t.Errorf("plan with stale records: exit %d\n%s", code, out)
	}
	h.mustTopo("up", "-f", file)
	if got := h.dig("api2", "www"); cmp.Diff([]string{"10.77.1.2"}, got) != "" {
		t.Errorf("www after the records were repaired: %v", got)
	}

	// A namespace deleted and made again by hand: the resolver must listen
	// in the new one.
	h.mustSh("ip netns del dns-lone")
	h.mustTopo("up", "-f", file)
	if got := h.dig("lone", "lone"); cmp.Diff([]string{"10.77.3.2"}, got) != "" {
		t.Errorf("lone in its rebuilt namespace: %v", got)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the repairs: exit %d", code)
	}
	h.mustTopo("down", "-f", file)
	assertNoDNS(t, h, "dns")
}

// A container's command resolves through the resolver too: it runs under
// ip netns exec, with the namespace's resolv.conf and hosts over /etc.
func TestDNSFromContainerCommand(t *testing.T) {
	h := newDNSHost(t)
	file := writeFile(t, "cmddns", `name: cmddns
networks:
  lan: {subnet: 10.78.0.0/24}
containers:
  a:
    networks:
      lan: {aliases: [alpha]}
  b:
    networks: [lan]
    command: [sh, -c, "until getent hosts alpha > /run/b-resolved; do sleep 0.1; done; exec sleep 1000"]
`)
	h.mustTopo("up", "-f", file)
	h.waitFor("b's command to resolve alpha", func() bool { _, ok := h.sh("[ -s /run/b-resolved ]"); return ok })
	out := h.mustSh("cat /run/b-resolved")
	if !strings.HasPrefix(out, "10.78.0.2 ") {
		t.Errorf("b's command resolved alpha as %q", out)
	}
	h.mustTopo("down", "-f", file)
	assertNoDNS(t, h, "cmddns")
}
