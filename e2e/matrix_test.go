package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/golden"
)

// The isolation matrix: every network of two projects, internal or not,
// all of them dual stack, probed with TCP and UDP, over IPv4 and over
// IPv6, from containers, the host and an outside host.
// The README documents the matrix between these markers; the test
// compares what it sees with it, cell by cell, and -update rewrites it.
const (
	matrixBegin = "<!-- isolation matrix: made by e2e TestIsolationMatrix; go test ./e2e -run TestIsolationMatrix -update rewrites it -->\n"
	matrixEnd   = "<!-- end of the isolation matrix -->\n"
)

// matrixNet is one network of the matrix: a client container NAMEc that
// probes and a server container NAMEs that answers "PROJECT.NAME". The
// server is on network also too, when there is one.
type matrixNet struct {
	project, name, subnet, subnet6 string
	internal                       bool
	also                           string
}

func (n matrixNet) label() string { return n.project + "." + n.name }

var matrixNets = []matrixNet{
	{"a", "n1", "10.81.1.0/24", "fd81:1::/64", false, ""},
	{"a", "n2", "10.81.2.0/24", "fd81:2::/64", false, ""},
	{"a", "i1", "10.81.3.0/24", "fd81:3::/64", true, ""},
	{"a", "i2", "10.81.4.0/24", "fd81:4::/64", true, ""},
	// As web in the shop: a publisher on an internal network too, whose
	// answers to that network take the short way, not through the host.
	{"b", "n1", "10.82.1.0/24", "fd82:1::/64", false, "i1"},
	{"b", "i1", "10.82.2.0/24", "fd82:2::/64", true, ""},
}

// matrixPorts are each project's publishes of its n1 server's port 7000,
// TCP and UDP: on every address, on 127.0.0.1 and on the host's address
// 198.18.0.1, at host ports BASE, BASE+1 and BASE+2.
var matrixPorts = map[string]int{"a": 8001, "b": 8101}

const matrixPort = 7000

// matrixFile is project's topology file.
func matrixFile(project string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnetworks:\n", project)
	for _, n := range matrixNets {
		if n.project == project {
			fmt.Fprintf(&b, "  %s: {subnet: [%s, %q], internal: %v}\n", n.name, n.subnet, n.subnet6, n.internal)
		}
	}
	b.WriteString("containers:\n")
	for _, n := range matrixNets {
		if n.project != project {
			continue
		}
		fmt.Fprintf(&b, "  %sc: {networks: [%s]}\n", n.name, n.name)
		ports := ""
		if base, ok := matrixPorts[project]; ok && n.name == "n1" {
			var ps []string
			for i, ip := range []string{"", "127.0.0.1:", hostAddr + ":"} {
				for _, proto := range []string{"tcp", "udp"} {
					ps = append(ps, fmt.Sprintf(`"%s%d:%d/%s"`, ip, base+i, matrixPort, proto))
				}
			}
			ports = ", ports: [" + strings.Join(ps, ", ") + "]"
		}
		nets := n.name
		if n.also != "" {
			nets += ", " + n.also
		}
		fmt.Fprintf(&b, "  %ss: {networks: [%s]%s}\n", n.name, nets, ports)
	}
	return b.String()
}

// matrixSource is where probes start: a client container, the host or
// the outside host.
type matrixSource struct {
	label, ns string
	// gateway and gateway6 are the host's addresses on the source's
	// network.
	gateway, gateway6 string
}

// matrixTarget is a row: what is probed, at which address, from a source.
type matrixTarget struct {
	label string
	// addr is the address to probe from src, "" where the row does not
	// apply to it.
	addr     func(src matrixSource) string
	port     int
	identity string
}

// TestIsolationMatrix brings up two projects of two networks and two
// internal networks (one of each for the second), and probes, from a
// container of each network, from the host and from another host on the
// LAN, every network's server, a program of the host, and each publish
// at each address it may be reached at. Internal networks' containers
// have a default route they added themselves, so that what stops them is
// the firewall, not a missing route; the outside host routes the
// containers' subnets to the host.
func TestIsolationMatrix(t *testing.T) {
	h := newHost(t)
	h.outside6()
	h.mustSh("ip -n outside route add 10.80.0.0/12 via " + hostAddr + "; ip -n outside route add fd80::/12 via " + hostAddr6)
	h.bridgeNetfilter()
	files := map[string]string{}
	for _, p := range []string{"a", "b"} {
		files[p] = writeFile(t, p, matrixFile(p))
		h.mustTopo("up", "-f", files[p])
	}

	servers, servers6 := map[string]string{}, map[string]string{} // label -> address
	sources := []matrixSource{}
	var n1Gateway, n1Gateway6 string
	for _, n := range matrixNets {
		d := h.network(files[n.project], n.name)
		servers[n.label()], servers6[n.label()] = member(t, d, n.name+"s"), memberOf(t, d, n.name+"s", true)
		ns := n.project + "-" + n.name + "c"
		sources = append(sources, matrixSource{n.label(), ns, d.Gateway, d.Gateway6})
		if n.internal {
			h.mustSh(fmt.Sprintf("ip -n %s route add default via %s; ip -n %s route add ::/0 via %s", ns, d.Gateway, ns, d.Gateway6))
		}
		if n.label() == "a.n1" {
			n1Gateway, n1Gateway6 = d.Gateway, d.Gateway6
		}
	}
	sources = append(sources, matrixSource{"host", "", n1Gateway, n1Gateway6}, matrixSource{"outside", "outside", n1Gateway, n1Gateway6})
	heard := map[string]*server{"host": h.agentServe("", "host", matrixPort)}
	for _, n := range matrixNets {
		heard[n.label()] = h.agentServe(n.project+"-"+n.name+"s", n.label(), matrixPort)
	}

	at := func(addr string) func(matrixSource) string { return func(matrixSource) string { return addr } }
	gateway := func(s matrixSource) string { return s.gateway }
	gateway6 := func(s matrixSource) string { return "[" + s.gateway6 + "]" }
	loopback := func(s matrixSource) string {
		if s.label == "host" {
			return "127.0.0.1" // elsewhere it is the prober's own
		}
		return ""
	}
	var targets []matrixTarget
	for _, n := range matrixNets {
		targets = append(targets, matrixTarget{n.label(), at(servers[n.label()]), matrixPort, n.label()})
	}
	for _, n := range matrixNets {
		targets = append(targets, matrixTarget{n.label() + ", at its IPv6 address", at("[" + servers6[n.label()] + "]"), matrixPort, n.label()})
	}
	targets = append(targets,
		matrixTarget{"host, at the gateway", gateway, matrixPort, "host"},
		matrixTarget{"host, at " + hostAddr, at(hostAddr), matrixPort, "host"},
		matrixTarget{"host, at the IPv6 gateway", gateway6, matrixPort, "host"},
		matrixTarget{"host, at " + hostAddr6, at("[" + hostAddr6 + "]"), matrixPort, "host"})
	for _, p := range []string{"a", "b"} {
		base, id := matrixPorts[p], p+".n1"
		pub := func(bind string, port int, via string, addr func(matrixSource) string) matrixTarget {
			return matrixTarget{fmt.Sprintf("%s %s:%d, at %s", p, bind, port, via), addr, port, id}
		}
		targets = append(targets,
			pub("0.0.0.0", base, hostAddr, at(hostAddr)),
			pub("0.0.0.0", base, "the gateway", gateway),
			pub("0.0.0.0", base, "127.0.0.1", loopback),
			pub("127.0.0.1", base+1, "127.0.0.1", loopback),
			pub("127.0.0.1", base+1, hostAddr, at(hostAddr)),
			pub(hostAddr, base+2, hostAddr, at(hostAddr)),
			pub(hostAddr, base+2, "the gateway", gateway),
			// 0.0.0.0 answers on [::] too, the container being dual stack.
			pub("0.0.0.0", base, hostAddr6, at("["+hostAddr6+"]")),
			pub("0.0.0.0", base, "the IPv6 gateway", gateway6))
	}

	readme := readmePath()
	documented := parseMatrix(t, readme)
	var checks []check
	index := make([][][]int, len(targets)) // row, column -> checks
	for r, tg := range targets {
		index[r] = make([][]int, len(sources))
		for c, src := range sources {
			addr := tg.addr(src)
			if addr == "" {
				continue
			}
			want := tg.identity
			if documented[tg.label][src.label] == "no" {
				want = "" // a short timeout: nothing is expected
			}
			for _, proto := range []string{"tcp", "udp"} {
				index[r][c] = append(index[r][c], len(checks))
				checks = append(checks, check{From: src.ns, Proto: proto, Addr: fmt.Sprintf("%s:%d", addr, tg.port), Want: want})
			}
		}
	}
	answers := h.probeAll(checks)

	cells := make([][]string, len(targets))
	for r, tg := range targets {
		cells[r] = make([]string, len(sources))
		for c := range sources {
			ids := index[r][c]
			if ids == nil {
				cells[r][c] = "-"
				continue
			}
			var reached []string
			for _, i := range ids {
				switch got := answers[i]; got {
				case tg.identity:
					reached = append(reached, checks[i].Proto)
				case "":
					// Arrived, but the answer was lost on the way back:
					// isolation failed all the same.
					if checks[i].Proto == "udp" && heard[tg.identity].heardProbe(fmt.Sprint(i)) {
						reached = append(reached, "udp in")
					}
				default:
					reached = append(reached, checks[i].Proto+"→"+got)
				}
			}
			switch {
			case len(reached) == 0:
				cells[r][c] = "no"
			case len(reached) == 2 && reached[0] == "tcp" && reached[1] == "udp":
				cells[r][c] = "yes"
			default:
				cells[r][c] = strings.Join(reached, " ")
			}
		}
	}
	var cols []string
	for _, s := range sources {
		cols = append(cols, s.label)
	}
	var rows []string
	for _, tg := range targets {
		rows = append(rows, tg.label)
	}
	table := renderMatrix(rows, cols, cells)
	t.Logf("what reaches what (TCP and UDP):\n%s", table)

	if *golden.Update {
		writeMatrix(t, readme, table)
		return
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if doc := matrixBlock(string(b)); doc != table {
		var diffs []string
		for r, row := range rows {
			for c, col := range cols {
				if got, want := cells[r][c], documented[row][col]; got != want {
					diffs = append(diffs, fmt.Sprintf("  %s, from %s: README says %q, the kernel does %q", row, col, want, got))
				}
			}
		}
		if len(diffs) == 0 {
			diffs = append(diffs, "  the cells agree, the text does not:\n"+doc)
		}
		t.Errorf("the isolation matrix in README.md is not what the kernel does "+
			"(go test ./e2e -run TestIsolationMatrix -update rewrites it):\n%s", strings.Join(diffs, "\n"))
	}
}

func readmePath() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "README.md")
}

// renderMatrix is the markdown table, its columns aligned.
func renderMatrix(rows, cols []string, cells [][]string) string {
	head := append([]string{"to ↓ from →"}, cols...)
	lines := [][]string{head}
	for r, row := range rows {
		lines = append(lines, append([]string{row}, cells[r]...))
	}
	width := make([]int, len(head))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(l []string) {
		b.WriteString("|")
		for i, c := range l {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(lines[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, l := range lines[1:] {
		line(l)
	}
	return b.String()
}

// matrixBlock is the table between the README's markers, "" without them.
func matrixBlock(readme string) string {
	_, rest, ok := strings.Cut(readme, matrixBegin)
	if !ok {
		return ""
	}
	block, _, ok := strings.Cut(rest, matrixEnd)
	if !ok {
		return ""
	}
	return block
}

// parseMatrix reads the README's matrix as row -> column -> cell.
func parseMatrix(t *testing.T, readme string) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	var cols []string
	for i, l := range strings.Split(strings.TrimSpace(matrixBlock(string(b))), "\n") {
		f := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		switch {
		case i == 0:
			cols = f
		case i > 1 && len(f) == len(cols):
			out[f[0]] = map[string]string{}
			for j := 1; j < len(f); j++ {
				out[f[0]][cols[j]] = f[j]
			}
		}
	}
	return out
}

// writeMatrix puts table between the README's markers.
func writeMatrix(t *testing.T, readme, table string) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	old := matrixBlock(string(b))
	if old == "" && !strings.Contains(string(b), matrixBegin+matrixEnd) {
		t.Fatalf("README.md has no isolation matrix markers:\n%s%s", matrixBegin, matrixEnd)
	}
	s := strings.Replace(string(b), matrixBegin+old+matrixEnd, matrixBegin+table+matrixEnd, 1)
	if err := os.WriteFile(readme, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
