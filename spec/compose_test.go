package spec

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/topolab/topo/privilege"
)

// writeIn writes a file at name (which may hold folders) in dir and
// returns its path.
func writeIn(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(vars map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestSubstitute(t *testing.T) {
	env := envOf(map[string]string{"SET": "value", "EMPTY": "", "PORT": "8080"})
	tests := []struct{ in, want, err string }{
		{in: "no variables", want: "no variables"},
		{in: "$SET and ${SET}", want: "value and value"},
		{in: "${UNSET}|$UNSET", want: "|"},
		{in: "$$SET costs $$5", want: "$SET costs $5"},
		{in: "${SET:-d} ${EMPTY:-d} ${UNSET:-d}", want: "value d d"},
		{in: "${SET-d} ${EMPTY-d} ${UNSET-d}", want: "value  d"},
		{in: "${SET:+alt} ${EMPTY:+alt} ${UNSET:+alt}", want: "alt  "},
		{in: "${SET+alt} ${EMPTY+alt} ${UNSET+alt}", want: "alt alt "},
		{in: "${SET:?no} ${EMPTY?no}", want: "value "},
		{in: "${UNSET:-${PORT}}:80", want: "8080:80"},
		{in: "${UNSET:-${ALSO:-deep}}", want: "deep"},
		{in: "${UNSET:-a-b:c}", want: "a-b:c"},
		{in: "${EMPTY:?is needed}", err: "required variable EMPTY is missing a value: is needed"},
		{in: "${UNSET?}", err: "required variable UNSET is missing a value"},
		{in: "${UNSET:?${SET} is the hint}", err: "required variable UNSET is missing a value: value is the hint"},
		{in: "price $5", err: `invalid interpolation "price $5": "$" must start $NAME, ${NAME...} or $$; write $$ for a literal $`},
		{in: "end $", err: `invalid interpolation "end $": "$" must start $NAME, ${NAME...} or $$; write $$ for a literal $`},
		{in: "${SET", err: `invalid interpolation "${SET": "${" is not closed by "}"; write $$ for a literal $`},
		{in: "${}", err: `invalid interpolation "${}": it names no variable (a name is letters, digits and '_', not starting with a digit)`},
		{in: "${SET*x}", err: `invalid interpolation "${SET*x}": after the name write }, or one of :- - :? ? :+ + and a value`},
	}
	for _, tt := range tests {
		var unset []string
		got, err := substitute(tt.in, env, func(n string) { unset = append(unset, n) })
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("substitute(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("substitute(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if tt.in == "${UNSET}|$UNSET" && len(unset) != 2 {
			t.Errorf("substitute(%q) told of unset %v, want UNSET twice", tt.in, unset)
		}
	}
}

// TestInterpolationTypes: a plain value takes the type of its new text, a
// quoted one stays a string; keys are not interpolated; unset variables
// are notes.
func TestInterpolationTypes(t *testing.T) {
	t.Setenv("TOPO_TEST_INTERNAL", "true")
	t.Setenv("TOPO_TEST_PORT", "8080")
	f, err := Parse("/x/lab/topo.yaml", []byte(`networks:
  n:
    internal: ${TOPO_TEST_INTERNAL}
  m: {}
containers:
  a:
    networks: [m, n]
    ports: [$TOPO_TEST_PORT]
    command: [echo, "${TOPO_TEST_PORT}", "${TOPO_TEST_UNSET}"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Network("n").Internal {
		t.Errorf("network n %+v: want internal", f.Network("n"))
	}
	c := f.Container("a")
	if c.Ports[0].ContainerStart != 8080 || !cmp.Equal(c.Command, []string{"echo", "8080", ""}) {
		t.Errorf("ports %+v command %q", c.Ports[0], c.Command)
	}
	if len(f.Notes) != 1 || f.Notes[0].Error() != `/x/lab/topo.yaml:9:42: the "TOPO_TEST_UNSET" variable is not set: it is replaced by the empty string` {
		t.Errorf("notes %v", f.Notes)
	}
	_, err = Parse("/x/lab/topo.yaml", []byte("networks:\n  ${KEY}: {}\n"))
	if err == nil || !strings.Contains(err.Error(), `network name "${KEY}" is not valid`) {
		t.Errorf("a key is interpolated: %v", err)
	}
}

func TestDotEnv(t *testing.T) {
	src := `# comment
A=1
export B = two words # comment
C='single $A # kept'
D="double ${A}\n\"q\""
E=${A}-${OS:-x}
F="multi
line"
G: yaml style
OS=file
H
`
	got, err := parseDotEnv(".env", []byte(src), envOf(map[string]string{"OS": "os", "H": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "single $A # kept", "D": "double 1\n\"q\"",
		"E": "1-os", "F": "multi\nline", "G": "yaml style", "H": "from-env"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parseDotEnv (-want +got):\n%s", d)
	}
	for src, msg := range map[string]string{
		"A=1\nB='open\n":   `.env:2: the ' quote of B is not closed`,
		"=x\n":             `.env:1: expected KEY=VALUE, got "=x": a key is letters, digits, '_', '.' and '-'`,
		"A=1\nB x\n":       `.env:2: expected '=' after B, got "x"`,
		"A=\"x\" y\n":      `.env:1: A: unexpected "y" after the closing quote`,
		"A=${B:?needed}\n": `.env:1: A: required variable B is missing a value: needed`,
	} {
		if _, err := parseDotEnv(".env", []byte(src), envOf(nil)); err == nil || err.Error() != msg {
			t.Errorf("parseDotEnv(%q) = %v, want %q", src, err, msg)
		}
	}
}

// mergeYAML merges documents as several -f files and renders the result.
func mergeYAML(t *testing.T, docs ...string) string {
	t.Helper()
	p := newParser("a.yaml")
	var root *yaml.Node
	for i, d := range docs {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(d), &n); err != nil {
			t.Fatal(err)
		}
		r := n.Content[0]
		var mark func(n *yaml.Node)
		mark = func(n *yaml.Node) {
			p.origin[n] = "b.yaml"
			for _, c := range n.Content {
				mark(c)
			}
		}
		if i > 0 {
			mark(r)
		}
		root = p.merge(root, r)
	}
	if err := p.err(); err != nil {
		return "error: " + err.Error()
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p.plain(root)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name       string
		base, over string
		want       string
	}{
		{"mappings merge, scalars override",
			"services: {web: {image: a, hostname: h}}", "services: {web: {image: b}, db: {}}",
			"services:\n  web:\n    image: b\n    hostname: h\n  db: {}\n"},
		{"command and entrypoint are replaced",
			"services: {web: {command: [a, b], entrypoint: x}}", "services: {web: {command: [c], entrypoint: [y]}}",
			"services:\n  web:\n    command:\n      - c\n    entrypoint:\n      - y\n"},
		{"other sequences append",
			"services: {web: {dns: [1.1.1.1]}}", "services: {web: {dns: 8.8.8.8}}",
			"services:\n  web:\n    dns:\n      - 1.1.1.1\n      - 8.8.8.8\n"},
		{"ports append, one per ip, published, target and protocol",
			`services: {web: {ports: ["8080:80", "53:53/udp", {target: 443, published: "8443"}]}}`,
			`services: {web: {ports: ["8081:81", "0.0.0.0:8080:80", "8443:443"]}}`,
			"services:\n  web:\n    ports:\n      - \"0.0.0.0:8080:80\"\n      - \"53:53/udp\"\n      - \"8443:443\"\n      - \"8081:81\"\n"},
		{"service networks merge as mappings, aliases append once",
			"services: {web: {networks: {front: {aliases: [www, api]}}}}", "services: {web: {networks: [back, front]}}",
			"services:\n  web:\n    networks:\n      front:\n        aliases:\n          - www\n          - api\n      back:\n"},
		{"aliases of both",
			"services: {web: {networks: {front: {aliases: [www]}}}}", "services: {web: {networks: {front: {aliases: [WWW, web.local]}}}}",
			"services:\n  web:\n    networks:\n      front:\n        aliases:\n          - WWW\n          - web.local\n"},
		{"topo's containers merge as services",
			"containers: {a: {command: [x], ports: [\"80\"], networks: [n]}}", "containers: {a: {command: [y], ports: [\"80\", \"81\"], networks: {n: {aliases: [b]}}}}",
			"containers:\n  a:\n    command:\n      - y\n    ports:\n      - \"80\"\n      - \"81\"\n    networks:\n      n:\n        aliases:\n          - b\n"},
		{"environment and labels merge by key",
			"services: {web: {environment: [A=1, B=2], labels: {x: y}}}", "services: {web: {environment: {B: 3, C: null}, labels: [z=w]}}",
			"services:\n  web:\n    environment:\n      A: \"1\"\n      B: 3\n      C: null\n    labels:\n      x: y\n      z: w\n"},
		{"ipam configs merge by subnet",
			"networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24}]}}}", "networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, ip_range: 10.0.0.128/25}, {subnet: 'fd00::/64'}]}}}",
			"networks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          ip_range: 10.0.0.128/25\n        - subnet: 'fd00::/64'\n"},
		{"null keeps the base",
			"services: {web: {image: a}}", "services: {web: }",
			"services:\n  web:\n    image: a\n"},
		{"!reset removes, !override replaces",
			"services: {web: {ports: [\"80:80\"], networks: {a: {}, b: {}}, image: x}}", "services: {web: {ports: !reset [], networks: !override {c: {}}}}",
			"services:\n  web:\n    networks:\n      c: {}\n    image: x\n"},
		{"merge keys of either side",
			"x-a: &a {image: a, hostname: h}\nservices: {web: {<<: *a}}", "services: {web: {image: b}}",
			"x-a:\n  image: a\n  hostname: h\nservices:\n  web:\n    image: b\n    hostname: h\n"},
		{"build strings are contexts",
			"services: {web: {build: ./app}}", "services: {web: {build: {dockerfile: Dev}}}",
			"services:\n  web:\n    build:\n      context: ./app\n      dockerfile: Dev\n"},
		{"a list cannot override a mapping",
			"services: {web: {networks: {a: {}}, healthcheck: {test: x}}}", "services: {web: {healthcheck: [x]}}",
			"error: b.yaml:1:31: services.web.healthcheck: a list cannot override the mapping (a.yaml:1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, mergeYAML(t, tt.base, tt.over)); d != "" {
				t.Errorf("merge (-want +got):\n%s", d)
			}
		})
	}
}

// TestMergeKeepsPositions: a problem in the second file is reported in
// it, the first file's in the first, in file order.
func TestMergeKeepsPositions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string { return writeIn(t, dir, name, src) }
	a := write("compose.yaml", "services:\n  web:\n    networks: [front]\n    ports: [\"99999\"]\nnetworks:\n  front:\n")
	b := write("dev.yaml", "services:\n  web:\n    networks:\n      front: {ipv4_address: 10.1.1.300}\n    image: x\n")
	_, err := LoadFiles(Options{Files: []string{a, b}, EnvFiles: []string{}})
	want := a + `:4:13: service "web": port "99999": container port 99999 is out of range: ports are 1 to 65535` + "\n" +
		b + `:4:29: service "web": network "front": ipv4_address "10.1.1.300" is not an IPv4 address like "10.42.1.10"`
	if err == nil || err.Error() != want {
		t.Errorf("LoadFiles = %v\nwant %s", err, want)
	}
	c := write("dev2.yaml", "services:\n  web:\n    networks:\n      front: {ipv4_address: 10.1.1.30}\n    image: x\n")
	f, err := LoadFiles(Options{Files: []string{write("ok.yaml", "services:\n  web:\n    networks: [front]\nnetworks:\n  front: {ipam: {config: [{subnet: 10.1.1.0/24}]}}\n"), c}, EnvFiles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Notes[0]; n.Error() != c+":5:5: services.web.image is ignored: topo runs no images" {
		t.Errorf("note %v", n)
	}
}

func TestComposeModel(t *testing.T) {
	f, err := Parse("/p/shop/compose.yaml", []byte(`services:
  web:
    entrypoint: ["tini", "--"]
    command: 'python3 -m http.server "80"'
    container_name: shop_web
    hostname: Www
    networks:
      back: {priority: 1}
      front:
        aliases: [api]
        ipv4_address: 10.5.0.10
        priority: 5
        gw_priority: 2
    ports:
      - target: 80
        published: "8000-8010"
      - target: 53
        published: 5353
        protocol: udp
        host_ip: 127.0.0.1
      - "9000:90"
  side:
    network_mode: service:web
  plain:
    command: ""
networks:
  front:
    ipam: {config: [{subnet: 10.5.0.0/24, gateway: 10.5.0.1, ip_range: 10.5.0.128/25, aux_addresses: {r: 10.5.0.129}}]}
  back: {internal: "true"}
`))
	if err != nil {
		t.Fatal(err)
	}
	web, side := f.Container("web"), f.Container("side")
	if d := cmp.Diff([]string{"tini", "--", "python3", "-m", "http.server", "80"}, web.Command); d != "" {
		t.Errorf("command (-want +got):\n%s", d)
	}
	var nets []string
	for _, a := range web.Networks {
		nets = append(nets, a.Network+" "+strings.Join(a.Aliases, ","))
	}
	if d := cmp.Diff([]string{"front api,shop_web", "back shop_web"}, nets); d != "" {
		t.Errorf("networks in attach order (-want +got):\n%s", d)
	}
	if a := web.Networks[0]; a.IPv4 != netip.MustParseAddr("10.5.0.10") || a.GwPriority != 2 || web.Hostname != "www" {
		t.Errorf("front attachment %+v, hostname %q", a, web.Hostname)
	}
	var ports []string
	for _, p := range web.Ports {
		ports = append(ports, p.Raw)
	}
	if d := cmp.Diff([]string{"8000-8010:80", "127.0.0.1:5353:53/udp", "9000:90"}, ports); d != "" || !web.Ports[0].PicksHostPort() {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if side.Mode != ModeContainer || side.ModeTarget != "web" || f.Container("plain").Command != nil {
		t.Errorf("side %+v, plain command %q", side, f.Container("plain").Command)
	}
	front, back := f.Network("front"), f.Network("back")
	if front.IPRange != netip.MustParsePrefix("10.5.0.128/25") || len(front.Reserved) != 1 || !back.Internal {
		t.Errorf("front %+v, back %+v", front, back)
	}
}

// TestComposeIPv6: enable_ipv6, an IPv6 ipam subnet beside the IPv4 one
// and ipv6_address read as topo's own keys.
func TestComposeIPv6(t *testing.T) {
	f, err := Parse("/p/six/compose.yaml", []byte(`services:
  web:
    networks:
      front: {ipv6_address: "fd00:5::10"}
      auto: {}
      four: {}
networks:
  front:
    enable_ipv6: true
    ipam: {config: [{subnet: 10.5.0.0/24}, {subnet: "fd00:5::/64", gateway: "fd00:5::1"}]}
  auto: {enable_ipv6: true}
  four:
    ipam: {config: [{subnet: 10.6.0.0/24}, {subnet: "fd00:6::/64"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	front, auto := f.Network("front"), f.Network("auto")
	if front.Subnet != netip.MustParsePrefix("10.5.0.0/24") || front.Subnet6 != netip.MustParsePrefix("fd00:5::/64") || !front.IPv6() || !auto.IPv6() || auto.Subnet6.IsValid() {
		t.Errorf("front %+v, auto %+v", front, auto)
	}
	if a := f.Container("web").Networks[0]; a.IPv6 != netip.MustParseAddr("fd00:5::10") {
		t.Errorf("front attachment %+v", a)
	}
	// As Docker's, an IPv6 pool needs enable_ipv6: without it, noted.
	if four := f.Network("four"); four.IPv6() {
		t.Errorf("four, without enable_ipv6, has IPv6: %+v", four)
	}
	var notes []string
	for _, n := range f.Notes {
		notes = append(notes, n.Msg)
	}
	if d := cmp.Diff([]string{"networks.four: IPv6 subnet fd00:6::/64 is ignored: the network has no enable_ipv6: true, so it is IPv4 only"}, notes); d != "" {
		t.Errorf("notes (-want +got):\n%s", d)
	}
}

// TestComposeIPv6HostIP: the long port syntax's IPv6 host_ip is the short
// syntax's bracketed address, as Compose reads it: [::1] for the host
// alone, [::] for every IPv6 address.
func TestComposeIPv6HostIP(t *testing.T) {
	f, err := Parse("/p/six/compose.yaml", []byte(`services:
  web:
    networks: [front]
    ports:
      - {target: 80, published: 8081, host_ip: "::1"}
      - {target: 443, published: 8443, host_ip: "::"}
      - {target: 53, published: 5353, host_ip: "fd00:5::1", protocol: udp}
networks:
  front: {enable_ipv6: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range f.Container("web").Ports {
		got = append(got, fmt.Sprintf("%s %d:%d/%s", p.HostIP, p.HostStart, p.ContainerStart, p.Proto))
	}
	want := []string{"::1 8081:80/tcp", ":: 8443:443/tcp", "fd00:5::1 5353:53/udp"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if len(f.Notes) != 0 {
		t.Errorf("notes: %v", f.Notes)
	}
}

// TestComposePrivileges: a service's user, cap_add, cap_drop and
// privileged are read as in topo's files, merged across -f files as
// Compose merges lists (added to, each once).
func TestComposePrivileges(t *testing.T) {
	f, err := Parse("/p/lab/compose.yaml", []byte(`services:
  router:
    command: [sleep, infinity]
    user: 1000:1000
    cap_add: [net_admin, CAP_SYS_TIME, NET_ADMIN]
    cap_drop: [ALL]
  full:
    command: [sleep, infinity]
    privileged: true
`))
	if err != nil {
		t.Fatal(err)
	}
	want := privilege.Settings{User: "1000:1000", CapAdd: []string{"NET_ADMIN", "SYS_TIME"}, CapDrop: []string{"ALL"}}
	if got := f.Container("router").Privileges; !got.Equal(want) || f.Container("router").UserPos.Line != 4 {
		t.Errorf("router: %+v at %v, want %+v at line 4", got, f.Container("router").UserPos, want)
	}
	if got := f.Container("full").Privileges; !got.Privileged {
		t.Errorf("full: %+v, want privileged", got)
	}
	_, err = Parse("c.yaml", []byte("services: {a: {command: [x], cap_add: [NET_ADMN], user: \"a b\"}}\n"))
	for _, want := range []string{
		`c.yaml:1:40: service "a": cap_add: "NET_ADMN" is not a Linux capability (did you mean "NET_ADMIN"?)`,
		`c.yaml:1:57: service "a": user "a b" is neither a number nor a user name`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad privileges: %v\nwant %s", err, want)
		}
	}
}

// TestComposeBad: what topo refuses in a Compose file, with where.
func TestComposeBad(t *testing.T) {
	tests := []struct{ src, want string }{
		{"services: {a: {networks: [n]}}\nnetworks: {n: {external: maybe}}\n",
			`2:26: network "n": external must be true or false, got the string "maybe"`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {external: true, name: a/b}}\n",
			`2:38: network "n": name "a/b" holds '/', which an interface name cannot`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {driver: macvlan, ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.1.0.1}]}}}\n",
			`2:80: network "n": gateway 10.1.0.1 is not an address of subnet 10.0.0.0/24: use one from 10.0.0.1 to 10.0.0.254`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.254}]}}}\n",
			`2:63: network "n": gateway 10.0.0.254 is not supported yet: topo's bridge holds the subnet's first address, 10.0.0.1; write that or leave gateway out`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 10.0.0.0/24}, {subnet: 10.0.1.0/24}]}}}\n",
			`2:64: network "n": a second IPv4 subnet (the first is at line 2): topo networks have one IPv4 subnet`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, ip_range: 10.0.1.0/25}]}}}\n",
			`2:64: network "n": ip_range 10.0.1.0/25 is not inside subnet 10.0.0.0/24`},
		{"services: {a: {networks: {n: {aliasses: [x]}}}}\nnetworks: {n: }\n",
			`1:31: unknown key "aliasses" in service "a": network "n" (did you mean "aliases"?): valid keys are aliases, ipv4_address, ipv6_address, link_local_ips, mac_address, interface_name, driver_opts, priority, gw_priority, and x-* for extensions`},
		{"services: {a: {ports: [{published: 80}]}}\n", `1:24: service "a": ports: the entry has no target (the container's port)`},
		{"services: {a: {command: echo hi; echo there}}\n", `1:25: service "a": command: ";" outside quotes: no shell runs the command (Compose would drop what follows it); quote it, or write ["sh", "-c", "..."] for a shell`},
		{"services: {a: {network_mode: \"service:b\"}}\n", `1:30: container "a": network_mode "container:b" names no container: defined containers are "a"`},
		{"services: {a: {}}\ncontainers: {b: {}}\n", `2:1: the file has both services: (line 1) and containers:: a Compose file has services, a topo file containers; keep one`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {internal: maybe}}\n", `2:26: network "n": internal must be true or false, got the string "maybe"`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {enable_ipv4: false}}\n", `2:29: network "n": enable_ipv4: false makes an IPv6-only network, which needs IPv6`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 'fd00:1::/64', gateway: 'fd00:1::9'}]}}}\n", `2:65: network "n": gateway fd00:1::9 is not supported yet`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 'fd00:1::/64'}, {subnet: 'fd00:2::/64'}]}}}\n", `2:66: network "n": a second IPv6 subnet (the first is at line 2)`},
	}
	for _, tt := range tests {
		_, err := Parse("c.yaml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:"+tt.want) {
			t.Errorf("Parse(%q) = %v\nwant c.yaml:%s", tt.src, err, tt.want)
		}
	}
}

// TestProfilesIncludeExtends runs a project of several files through
// Resolve: include: with its own .env, extends: from another file, and
// profiles on and off.
func TestProfilesIncludeExtends(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) { writeIn(t, dir, name, src) }
	write("compose.yaml", "include: [db/compose.yaml]\nservices:\n  web: {extends: {file: base.yaml, service: base}, networks: [data]}\n  dbg: {profiles: [debug], network_mode: service:web}\n")
	write("base.yaml", "services:\n  base: {command: sleep 9, ports: [\"80\"]}\n")
	write("db/compose.yaml", "services:\n  db: {command: \"sleep ${T}\", networks: [data]}\nnetworks:\n  data: {}\n")
	write("db/.env", "T=5\n")
	f, err := LoadFiles(Options{Files: []string{filepath.Join(dir, "compose.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.Containers {
		got = append(got, c.Name+": "+strings.Join(c.Command, " "))
	}
	if d := cmp.Diff([]string{"web: sleep 9", "db: sleep 5"}, got); d != "" || len(f.Container("web").Ports) != 1 {
		t.Errorf("services (-want +got):\n%s", d)
	}
	f, err = LoadFiles(Options{Files: []string{filepath.Join(dir, "compose.yaml")}, Profiles: []string{"debug"}})
	if err != nil || f.Container("dbg") == nil || f.Container("dbg").ModeTarget != "web" {
		t.Errorf("with --profile debug: %v, %+v", err, f)
	}
	write("loop.yaml", "include: [compose2.yaml]\nservices: {}\n")
	write("compose2.yaml", "include: [loop.yaml]\nservices: {}\n")
	if _, err := LoadFiles(Options{Files: []string{filepath.Join(dir, "loop.yaml")}}); err == nil || !strings.Contains(err.Error(), "includes itself") {
		t.Errorf("include loop: %v", err)
	}
}

// TestComposeKeepsTopoChecks: what topo's own format refuses, a Compose
// file is refused for too, at the Compose file's line and column: a
// reserved subnet, a NUL byte in a command or an entrypoint, a subnet too
// small for its services, hostname with network_mode service:NAME. The
// protocol is taken in any case, in both port syntaxes.
func TestComposeKeepsTopoChecks(t *testing.T) {
	tests := []struct{ src, want string }{
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 127.0.0.0/8}]}}}\n",
			`2:41: network "n": subnet 127.0.0.0/8 is in the loopback block 127.0.0.0/8, which the kernel treats specially: use a private block (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)`},
		{"services: {a: {networks: [n]}}\nnetworks: {n: {ipam: {config: [{subnet: 169.0.0.0/8}]}}}\n",
			`2:41: network "n": subnet 169.0.0.0/8 overlaps the link-local block 169.254.0.0/16`},
		{"services:\n  a:\n    command: [\"sh\", \"-c\", \"echo a\\0b\"]\n",
			`3:27: service "a": command argument 2 ("echo a\x00b") holds a NUL byte, which no program argument can: remove it`},
		{"services:\n  a:\n    entrypoint: \"tini \\0\"\n",
			`3:17: service "a": entrypoint argument 1 ("\x00") holds a NUL byte, which no program argument can: remove it`},
		{"services:\n  a: {networks: [n]}\n  b: {networks: [n]}\nnetworks: {n: {ipam: {config: [{subnet: 10.0.0.0/30}]}}}\n",
			`4:41: network "n": subnet 10.0.0.0/30 holds 1 container (4 addresses less the network, gateway and broadcast addresses), but 2 join it ("a", "b"): use a /29 or larger`},
		{"services:\n  a: {}\n  b:\n    network_mode: service:a\n    hostname: bee\n",
			`5:5: container "b": conflicting options: hostname and the network mode "container:a" (line 4): the container has the hostname of "a", whose namespace it shares; remove hostname`},
	}
	for _, tt := range tests {
		_, err := Parse("c.yaml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:"+tt.want) {
			t.Errorf("Parse(%q) = %v\nwant c.yaml:%s", tt.src, err, tt.want)
		}
	}

	f, err := Parse("c.yaml", []byte("services:\n  a:\n    ports: [\"53:53/UDP\", {target: 54, protocol: UDP}, {target: 55, protocol: Tcp}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var protos []string
	for _, p := range f.Container("a").Ports {
		protos = append(protos, p.Proto)
	}
	if d := cmp.Diff([]string{"udp", "udp", "tcp"}, protos); d != "" {
		t.Errorf("protocols (-want +got):\n%s", d)
	}
}

// TestComposeChecksNameTheirFile: a problem that the second -f file
// brings is reported in it, and one about two keys in two files names
// the other file; the first file's problems stay in the first.
func TestComposeChecksNameTheirFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string { return writeIn(t, dir, name, src) }
	a := write("compose.yaml", "services:\n  web:\n    networks: [front]\n    command: [\"sh\", \"-c\", \"a\\0b\"]\n  probe:\n    network_mode: service:web\nnetworks:\n  front: {}\n")
	b := write("compose.override.yaml", "services:\n  probe:\n    hostname: probe\nnetworks:\n  front:\n    ipam:\n      config:\n        - subnet: 169.254.0.0/16\n")
	_, err := LoadFiles(Options{Files: []string{a, b}, EnvFiles: []string{}})
	want := a + `:4:27: service "web": command argument 2 ("a\x00b") holds a NUL byte, which no program argument can: remove it` + "\n" +
		b + `:3:5: container "probe": conflicting options: hostname and the network mode "container:web" (` + a + `:6): the container has the hostname of "web", whose namespace it shares; remove hostname` + "\n" +
		b + `:8:19: network "front": subnet 169.254.0.0/16 is in the link-local block 169.254.0.0/16, which the kernel treats specially: use a private block (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)`
	if err == nil || err.Error() != want {
		t.Errorf("LoadFiles =\n%v\nwant\n%s", err, want)
	}
}

// TestNotesAreCapped: notes are capped as errors are, the first hundred
// in file order, then a count.
func TestNotesAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n  a:\n")
	for i := range 150 {
		fmt.Fprintf(&b, "    k%d: 1\n", i)
	}
	f, err := Parse("/x/lab/compose.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Notes) != maxErrors+1 || !strings.HasPrefix(f.Notes[0].Error(), "/x/lab/compose.yaml:3:5: services.a.k0 is not a service key") ||
		f.Notes[maxErrors].Error() != "... and 50 more notes" {
		t.Errorf("%d notes, first %v, last %v", len(f.Notes), f.Notes[0], f.Notes[len(f.Notes)-1])
	}
}

// TestComposePortForms: a Compose file's ports go through the parser of
// topo's own (Docker's rules), in the short and the long syntax: SCTP,
// an empty host address and protocol, duplicates merged, and the notes
// of host mode and all-internal networks.
func TestComposePortForms(t *testing.T) {
	f, err := Parse("/p/lab/compose.yaml", []byte(`services:
  sig:
    ports:
      - "65000:300/sctp"
      - "54000:400/udp"
      - "65000:500/tcp"
      - target: 3456
        protocol: sctp
      - ":8080:6000/tcp"
      - "::6000"
      - "1234/"
      - "9080:80"
      - "9080:80"
  tool:
    network_mode: host
    ports: ["8080:80"]
  db:
    networks: [back]
    ports: ["5432:5432"]
networks:
  back: {internal: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range f.Container("sig").Ports {
		got = append(got, fmt.Sprintf("%s %s:%d-%d:%d-%d/%s", p.Raw, p.HostIP, p.HostStart, p.HostEnd, p.ContainerStart, p.ContainerEnd, p.Proto))
	}
	want := []string{
		"65000:300/sctp 0.0.0.0:65000-65000:300-300/sctp",
		"54000:400/udp 0.0.0.0:54000-54000:400-400/udp",
		"65000:500/tcp 0.0.0.0:65000-65000:500-500/tcp",
		"3456/sctp 0.0.0.0:0-0:3456-3456/sctp",
		":8080:6000/tcp 0.0.0.0:8080-8080:6000-6000/tcp",
		"::6000 0.0.0.0:0-0:6000-6000/tcp",
		"1234/ 0.0.0.0:0-0:1234-1234/tcp",
		"9080:80 0.0.0.0:9080-9080:80-80/tcp",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	if len(f.Container("tool").Ports) != 0 || len(f.Container("db").Ports) != 0 {
		t.Errorf("tool and db publish %v, %v; want nothing", f.Container("tool").Ports, f.Container("db").Ports)
	}
	var notes []string
	for _, n := range f.Notes {
		notes = append(notes, n.Error())
	}
	for _, w := range []string{
		`/p/lab/compose.yaml:16:5: container "tool": published ports are discarded when using host network mode`,
		`/p/lab/compose.yaml:19:5: container "db": published ports are unreachable: all its networks are internal`,
	} {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, w) }) {
			t.Errorf("no note %q in %q", w, notes)
		}
	}
}

// TestComposeDrivers: Compose's driver, driver_opts, external and name
// map onto the network's driver, options and external bridge; a bridge's
// driver_opts and a non-external network's name are notes.
func TestComposeDrivers(t *testing.T) {
	f, err := Parse("c.yaml", []byte(`services:
  a: {networks: [lan, lab, old, br]}
networks:
  lan:
    driver: macvlan
    driver_opts: {parent: eth1, macvlan_mode: private}
    ipam: {config: [{subnet: 192.168.50.0/24, gateway: 192.168.50.254, ip_range: 192.168.50.128/25}]}
  lab: {external: true, name: br-lab}
  old: {external: {name: virbr0}}
  br:
    driver_opts: {com.docker.network.bridge.name: docker1}
    name: mine
`))
	if err != nil {
		t.Fatal(err)
	}
	lan, lab, old, br := f.Network("lan"), f.Network("lab"), f.Network("old"), f.Network("br")
	if lan.Driver != "macvlan" || lan.DriverOpts["parent"] != "eth1" || lan.DriverOpts["macvlan_mode"] != "private" ||
		lan.Gateway.String() != "192.168.50.254" || lan.IPRange.String() != "192.168.50.128/25" {
		t.Errorf("lan: %+v", lan)
	}
	if !lab.External || lab.ExternalName != "br-lab" || !old.External || old.ExternalName != "virbr0" {
		t.Errorf("lab: %+v\nold: %+v", lab, old)
	}
	if br.External || len(br.DriverOpts) != 0 || len(f.Notes) != 2 {
		t.Errorf("br: %+v, notes %v", br, f.Notes)
	}
}
