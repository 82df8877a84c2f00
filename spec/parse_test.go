package spec

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/privilege"
)

var update = flag.Bool("update", false, "rewrite the .err golden files of testdata/bad")

// netip values have unexported fields; compare them as values.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

var (
	any4  = netip.MustParseAddr("0.0.0.0")
	local = netip.MustParseAddr("127.0.0.1")
)

// tcp is a single-port publish as parsePort returns it, without Pos.
func tcp(raw string, host, ctr uint16) *Port {
	return &Port{Raw: raw, HostIP: any4, HostStart: host, HostEnd: host, ContainerStart: ctr, ContainerEnd: ctr, Proto: "tcp"}
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want *File
	}{
		{
			name: "defaults and the implicit default network",
			src: `containers:
  a:
  b: {}
  c:
    hostname: C.Example
`,
			want: &File{
				Path:    "/labs/lab1/topo.yaml",
				Project: "lab1",
				Networks: []*Network{
					{Name: "default", Pos: Pos{Line: 2, Col: 3}, Driver: "bridge", Implicit: true},
				},
				Containers: []*Container{
					{Name: "a", Pos: Pos{Line: 2, Col: 3}, Hostname: "a", Networks: []*Attachment{{Network: "default", Pos: Pos{Line: 2, Col: 3}}}},
					{Name: "b", Pos: Pos{Line: 3, Col: 3}, Hostname: "b", Networks: []*Attachment{{Network: "default", Pos: Pos{Line: 3, Col: 3}}}},
					{Name: "c", Pos: Pos{Line: 4, Col: 3}, Hostname: "c.example", Networks: []*Attachment{{Network: "default", Pos: Pos{Line: 4, Col: 3}}}},
				},
			},
		},
		{
			name: "the design example",
			src: `name: shop
networks:
  front:
    subnet: 10.42.1.0/24
  back:
    internal: true
containers:
  web:
    networks:
      front: { aliases: [www, WWW2.example], ipv4_address: 10.42.1.10 }
      back: {}
    ports: ["8080:80", "127.0.0.1:8443:443", "53/udp", "9000"]
    command: ["python3", "-m", "http.server", "80"]
  db:
    networks: [back]
  probe:
    network_mode: container:web
  tools:
    network_mode: none
  edge:
    network_mode: host
    command: sleep infinity
`,
			want: &File{
				Path:       "/labs/lab1/topo.yaml",
				Project:    "shop",
				ProjectPos: Pos{Line: 1, Col: 7},
				Networks: []*Network{
					{Name: "front", Pos: Pos{Line: 3, Col: 3}, Driver: "bridge", Subnet: netip.MustParsePrefix("10.42.1.0/24"), SubnetPos: Pos{Line: 4, Col: 13}},
					{Name: "back", Pos: Pos{Line: 5, Col: 3}, Driver: "bridge", Internal: true},
				},
				Containers: []*Container{
					{
						Name: "web", Pos: Pos{Line: 8, Col: 3}, Hostname: "web",
						Networks: []*Attachment{
							{Network: "front", Pos: Pos{Line: 10, Col: 7}, Aliases: []string{"www", "www2.example"},
								IPv4: netip.MustParseAddr("10.42.1.10"), IPv4Pos: Pos{Line: 10, Col: 60}},
							{Network: "back", Pos: Pos{Line: 11, Col: 7}},
						},
						Ports: []*Port{
							{Raw: "8080:80", Pos: Pos{Line: 12, Col: 13}, HostIP: any4, HostStart: 8080, HostEnd: 8080, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"},
							{Raw: "127.0.0.1:8443:443", Pos: Pos{Line: 12, Col: 24}, HostIP: local, HostStart: 8443, HostEnd: 8443, ContainerStart: 443, ContainerEnd: 443, Proto: "tcp"},
							{Raw: "53/udp", Pos: Pos{Line: 12, Col: 46}, HostIP: any4, ContainerStart: 53, ContainerEnd: 53, Proto: "udp"},
							{Raw: "9000", Pos: Pos{Line: 12, Col: 56}, HostIP: any4, ContainerStart: 9000, ContainerEnd: 9000, Proto: "tcp"},
						},
						Command:    []string{"python3", "-m", "http.server", "80"},
						CommandPos: Pos{Line: 13, Col: 14},
					},
					{Name: "db", Pos: Pos{Line: 14, Col: 3}, Hostname: "db", Networks: []*Attachment{{Network: "back", Pos: Pos{Line: 15, Col: 16}}}},
					{Name: "probe", Pos: Pos{Line: 16, Col: 3}, Hostname: "probe", Mode: ModeContainer, ModeTarget: "web", ModePos: Pos{Line: 17, Col: 19}},
					{Name: "tools", Pos: Pos{Line: 18, Col: 3}, Hostname: "tools", Mode: ModeNone, ModePos: Pos{Line: 19, Col: 19}},
					{Name: "edge", Pos: Pos{Line: 20, Col: 3}, Hostname: "edge", Mode: ModeHost, ModePos: Pos{Line: 21, Col: 19},
						Command: []string{"sleep", "infinity"}, CommandPos: Pos{Line: 22, Col: 14}},
				},
			},
		},
		{
			name: "a defined default network is used, not added",
			src: `containers:
  a:
    network_mode: bridge
  b:
    networks: []
networks:
  default:
    subnet: 10.9.0.0/16
    driver: bridge
  other: ~
`,
			want: &File{
				Path:    "/labs/lab1/topo.yaml",
				Project: "lab1",
				Networks: []*Network{
					{Name: "default", Pos: Pos{Line: 7, Col: 3}, Driver: "bridge", DriverPos: Pos{Line: 9, Col: 13}, Subnet: netip.MustParsePrefix("10.9.0.0/16"), SubnetPos: Pos{Line: 8, Col: 13}},
					{Name: "other", Pos: Pos{Line: 10, Col: 3}, Driver: "bridge"},
				},
				Containers: []*Container{
					{Name: "a", Pos: Pos{Line: 2, Col: 3}, Hostname: "a", ModePos: Pos{Line: 3, Col: 19}, Networks: []*Attachment{{Network: "default", Pos: Pos{Line: 2, Col: 3}}}},
					{Name: "b", Pos: Pos{Line: 4, Col: 3}, Hostname: "b", Networks: []*Attachment{{Network: "default", Pos: Pos{Line: 4, Col: 3}}}},
				},
			},
		},
		{
			name: "anchors, merge keys and extensions",
			src: `name: lab
x-net: &net
  networks:
    lan:
      x-note: ignored
x-cmd: &cmd [sleep, 10, true]
networks:
  lan:
    x-owner: me
containers:
  a:
    <<: *net
    command: *cmd
    x-whatever: {any: [thing]}
  b:
    <<: [*net, {hostname: bee}]
    hostname: b2
`,
			want: &File{
				Path:       "/labs/lab1/topo.yaml",
				Project:    "lab",
				ProjectPos: Pos{Line: 1, Col: 7},
				Networks:   []*Network{{Name: "lan", Pos: Pos{Line: 8, Col: 3}, Driver: "bridge"}},
				Containers: []*Container{
					{Name: "a", Pos: Pos{Line: 11, Col: 3}, Hostname: "a", Networks: []*Attachment{{Network: "lan", Pos: Pos{Line: 4, Col: 5}}},
						Command: []string{"sleep", "10", "true"}, CommandPos: Pos{Line: 13, Col: 14}},
					// The container's own hostname wins over the merged one.
					{Name: "b", Pos: Pos{Line: 15, Col: 3}, Hostname: "b2", Networks: []*Attachment{{Network: "lan", Pos: Pos{Line: 4, Col: 5}}}},
				},
			},
		},
		{
			name: "default named without being defined",
			src: `networks:
  lan: {}
containers:
  a:
    networks: [lan]
  b:
    networks: [lan, default]
`,
			want: &File{
				Path:    "/labs/lab1/topo.yaml",
				Project: "lab1",
				Networks: []*Network{
					{Name: "lan", Pos: Pos{Line: 2, Col: 3}, Driver: "bridge"},
					{Name: "default", Pos: Pos{Line: 6, Col: 3}, Driver: "bridge", Implicit: true},
				},
				Containers: []*Container{
					{Name: "a", Pos: Pos{Line: 4, Col: 3}, Hostname: "a", Networks: []*Attachment{{Network: "lan", Pos: Pos{Line: 5, Col: 16}}}},
					{Name: "b", Pos: Pos{Line: 6, Col: 3}, Hostname: "b", Networks: []*Attachment{{Network: "lan", Pos: Pos{Line: 7, Col: 16}}, {Network: "default", Pos: Pos{Line: 7, Col: 21}}}},
				},
			},
		},
		{
			name: "ports as numbers and ranges",
			src: `containers:
  a:
    ports:
      - 80
      - 8000-8002:80-82
      - "127.0.0.1::5353/udp"
`,
			want: &File{
				Path:     "/labs/lab1/topo.yaml",
				Project:  "lab1",
				Networks: []*Network{{Name: "default", Pos: Pos{Line: 2, Col: 3}, Driver: "bridge", Implicit: true}},
				Containers: []*Container{{
					Name: "a", Pos: Pos{Line: 2, Col: 3}, Hostname: "a", Networks: []*Attachment{{Network: "default", Pos: Pos{Line: 2, Col: 3}}},
					Ports: []*Port{
						{Raw: "80", Pos: Pos{Line: 4, Col: 9}, HostIP: any4, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"},
						{Raw: "8000-8002:80-82", Pos: Pos{Line: 5, Col: 9}, HostIP: any4, HostStart: 8000, HostEnd: 8002, ContainerStart: 80, ContainerEnd: 82, Proto: "tcp"},
						{Raw: "127.0.0.1::5353/udp", Pos: Pos{Line: 6, Col: 9}, HostIP: local, ContainerStart: 5353, ContainerEnd: 5353, Proto: "udp"},
					},
				}},
			},
		},
		{
			name: "privileges, normalised as Compose takes them",
			src: `containers:
  a:
    network_mode: none
    user: 1000
    cap_add: [net_admin, CAP_SYS_TIME, NET_ADMIN]
    cap_drop: [all]
    command: [sleep, "1"]
  b:
    network_mode: none
    user: "nobody:nogroup"
    privileged: true
`,
			want: &File{
				Path:    "/labs/lab1/topo.yaml",
				Project: "lab1",
				Containers: []*Container{
					{Name: "a", Pos: Pos{Line: 2, Col: 3}, Hostname: "a", Mode: ModeNone, ModePos: Pos{Line: 3, Col: 19},
						Command: []string{"sleep", "1"}, CommandPos: Pos{Line: 7, Col: 14}, UserPos: Pos{Line: 4, Col: 11},
						Privileges: privilege.Settings{User: "1000", CapAdd: []string{"NET_ADMIN", "SYS_TIME"}, CapDrop: []string{"ALL"}}},
					{Name: "b", Pos: Pos{Line: 8, Col: 3}, Hostname: "b", Mode: ModeNone, ModePos: Pos{Line: 9, Col: 19}, UserPos: Pos{Line: 10, Col: 11},
						Privileges: privilege.Settings{User: "nobody:nogroup", Privileged: true}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("/labs/lab1/topo.yaml", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts...); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		raw  string
		want *Port
	}{
		{"80", &Port{Raw: "80", HostIP: any4, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		{"8080:80", tcp("8080:80", 8080, 80)},
		{"127.0.0.1:8080:80", &Port{Raw: "127.0.0.1:8080:80", HostIP: local, HostStart: 8080, HostEnd: 8080, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		{"127.0.0.1::80", &Port{Raw: "127.0.0.1::80", HostIP: local, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		{"8000-8002:80-82", &Port{Raw: "8000-8002:80-82", HostIP: any4, HostStart: 8000, HostEnd: 8002, ContainerStart: 80, ContainerEnd: 82, Proto: "tcp"}},
		{"80-82", &Port{Raw: "80-82", HostIP: any4, ContainerStart: 80, ContainerEnd: 82, Proto: "tcp"}},
		{"53/udp", &Port{Raw: "53/udp", HostIP: any4, ContainerStart: 53, ContainerEnd: 53, Proto: "udp"}},
		{"53/tcp", &Port{Raw: "53/tcp", HostIP: any4, ContainerStart: 53, ContainerEnd: 53, Proto: "tcp"}},
		// Docker lowercases the protocol.
		{"1234/UDP", &Port{Raw: "1234/UDP", HostIP: any4, ContainerStart: 1234, ContainerEnd: 1234, Proto: "udp"}},
		{"8080:80/Tcp", &Port{Raw: "8080:80/Tcp", HostIP: any4, HostStart: 8080, HostEnd: 8080, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		{"10.1.2.3:53:5353/udp", &Port{Raw: "10.1.2.3:53:5353/udp", HostIP: netip.MustParseAddr("10.1.2.3"), HostStart: 53, HostEnd: 53, ContainerStart: 5353, ContainerEnd: 5353, Proto: "udp"}},
		{"0.0.0.0:1-65535:1-65535", &Port{Raw: "0.0.0.0:1-65535:1-65535", HostIP: any4, HostStart: 1, HostEnd: 65535, ContainerStart: 1, ContainerEnd: 65535, Proto: "tcp"}},
		{"65535:1", tcp("65535:1", 65535, 1)},
		{"80-80", &Port{Raw: "80-80", HostIP: any4, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		// SCTP, as Docker takes it, alone and with host ports and addresses.
		{"3456/sctp", &Port{Raw: "3456/sctp", HostIP: any4, ContainerStart: 3456, ContainerEnd: 3456, Proto: "sctp"}},
		{"3456:3456/sctp", &Port{Raw: "3456:3456/sctp", HostIP: any4, HostStart: 3456, HostEnd: 3456, ContainerStart: 3456, ContainerEnd: 3456, Proto: "sctp"}},
		{"192.168.1.100::6000/sctp", &Port{Raw: "192.168.1.100::6000/sctp", HostIP: netip.MustParseAddr("192.168.1.100"), ContainerStart: 6000, ContainerEnd: 6000, Proto: "sctp"}},
		{"65000:300/sctp", &Port{Raw: "65000:300/sctp", HostIP: any4, HostStart: 65000, HostEnd: 65000, ContainerStart: 300, ContainerEnd: 300, Proto: "sctp"}},
		{"3456-3458/SCTP", &Port{Raw: "3456-3458/SCTP", HostIP: any4, ContainerStart: 3456, ContainerEnd: 3458, Proto: "sctp"}},
		// An empty host address is 0.0.0.0, an empty host port a free one
		// (Docker's splitParts: "::6000" is address "", port "", 6000).
		{":8080:6000/tcp", &Port{Raw: ":8080:6000/tcp", HostIP: any4, HostStart: 8080, HostEnd: 8080, ContainerStart: 6000, ContainerEnd: 6000, Proto: "tcp"}},
		{"::6000", &Port{Raw: "::6000", HostIP: any4, ContainerStart: 6000, ContainerEnd: 6000, Proto: "tcp"}},
		{"::6000/udp", &Port{Raw: "::6000/udp", HostIP: any4, ContainerStart: 6000, ContainerEnd: 6000, Proto: "udp"}},
		{":80", &Port{Raw: ":80", HostIP: any4, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		// An empty protocol is tcp (Docker's SplitProtoPort).
		{"1234/", &Port{Raw: "1234/", HostIP: any4, ContainerStart: 1234, ContainerEnd: 1234, Proto: "tcp"}},
		{"80-82/", &Port{Raw: "80-82/", HostIP: any4, ContainerStart: 80, ContainerEnd: 82, Proto: "tcp"}},
		{"8080:80/", tcp("8080:80/", 8080, 80)},
		// Host port 0 is a free one, as Docker allocates it.
		{"0:80", &Port{Raw: "0:80", HostIP: any4, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
		{"127.0.0.1:0:80/udp", &Port{Raw: "127.0.0.1:0:80/udp", HostIP: local, ContainerStart: 80, ContainerEnd: 80, Proto: "udp"}},
		// A bracketed address, as Docker strips the brackets of IPv6 ones.
		{"[127.0.0.1]:8080:80", &Port{Raw: "[127.0.0.1]:8080:80", HostIP: local, HostStart: 8080, HostEnd: 8080, ContainerStart: 80, ContainerEnd: 80, Proto: "tcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, msg := parsePort(tt.raw)
			if msg != "" {
				t.Fatalf("parsePort(%q): %s", tt.raw, msg)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts...); diff != "" {
				t.Errorf("parsePort(%q) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

// TestSplitPortParts pins Docker's split of an entry at its colons, which
// keeps IPv6 host addresses whole: "::6000" must stay an empty address
// and host port when "::1:80:80" and "::::80" name IPv6 addresses.
func TestSplitPortParts(t *testing.T) {
	tests := []struct{ raw, ip, host, ctr string }{
		{"80", "", "", "80"},
		{"8080:80", "", "8080", "80"},
		{":80", "", "", "80"},
		{"::6000", "", "", "6000"},
		{":8080:6000/tcp", "", "8080", "6000/tcp"},
		{"127.0.0.1::80", "127.0.0.1", "", "80"},
		{"::1:80:80", "::1", "80", "80"},
		{"[::1]:80:80", "[::1]", "80", "80"},
		{"::::80", "::", "", "80"},
		{"2001:4860:0:2001::68::333", "2001:4860:0:2001::68", "", "333"},
	}
	for _, tt := range tests {
		ip, host, ctr, _ := splitPortParts(tt.raw)
		if ip != tt.ip || host != tt.host || ctr != tt.ctr {
			t.Errorf("splitPortParts(%q) = %q, %q, %q; want %q, %q, %q", tt.raw, ip, host, ctr, tt.ip, tt.host, tt.ctr)
		}
	}
}

// TestPortNotes: published ports where they cannot work are accepted, as
// Docker accepts them, with a note, and publish nothing: with network_mode
// host, and on a container whose networks are all internal.
func TestPortNotes(t *testing.T) {
	src := `networks:
  back: {internal: true}
  vault: {internal: true}
  front: {}
containers:
  tool:
    network_mode: host
    ports: ["8080:80"]
  db:
    networks: [back, vault]
    ports: ["5432:5432"]
  web:
    networks: [back, front]
    ports: ["8081:80"]
`
	f, err := Parse("/x/lab/topo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, n := range f.Notes {
		notes = append(notes, n.Error())
	}
	want := []string{
		`/x/lab/topo.yaml:8:5: container "tool": published ports are discarded when using host network mode (line 7): the command listens on the host's own addresses`,
		`/x/lab/topo.yaml:11:5: container "db": published ports are unreachable: all its networks are internal, and nothing outside an internal network reaches into it; no rule is made for them (attach the container to a network without internal: true to publish them)`,
	}
	if diff := cmp.Diff(want, notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	for name, n := range map[string]int{"tool": 0, "db": 0, "web": 1} {
		if got := len(f.Container(name).Ports); got != n {
			t.Errorf("container %s has %d ports, want %d", name, got, n)
		}
	}
}

// TestDuplicatePortsMerge: two entries that publish the same are one
// publish, as Compose merges entries of one unique key (host address,
// published port, target, protocol), whatever their spelling; a second
// use of the host port for something else stays an error.
func TestDuplicatePortsMerge(t *testing.T) {
	f, err := Parse("/x/lab/topo.yaml", []byte(`containers:
  web:
    ports: ["9080:80", "9080:80", "0.0.0.0:9080:80/tcp", ":9080:80/", "53/udp", "53/UDP", "53", "127.0.0.1::80", "80", "80"]
`))
	if err != nil {
		t.Fatal(err)
	}
	var raws []string
	for _, p := range f.Container("web").Ports {
		raws = append(raws, p.Raw)
	}
	if diff := cmp.Diff([]string{"9080:80", "53/udp", "53", "127.0.0.1::80", "80"}, raws); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	_, err = Parse("/x/lab/topo.yaml", []byte(`containers:
  web:
    ports: ["9080:80", "9080:81"]
`))
	want := `/x/lab/topo.yaml:3:24: container "web": port "9080:81" collides with port "9080:80" of container "web" (line 3): both publish 0.0.0.0:9080/tcp; use another host port or address`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		msg  string
	}{
		{in: "sleep infinity", want: []string{"sleep", "infinity"}},
		{in: "  sleep \t 10\n", want: []string{"sleep", "10"}},
		{in: `sh -c "sleep 1; echo 'hi'"`, want: []string{"sh", "-c", "sleep 1; echo 'hi'"}},
		{in: `echo 'a "b" c' d\ e`, want: []string{"echo", `a "b" c`, "d e"}},
		{in: `echo "a\"b\\c\d" x''y ""`, want: []string{"echo", `a"b\cd`, "xy", ""}},
		{in: `echo $HOME '*' "a|b" x\;y`, want: []string{"echo", "$HOME", "*", "a|b", "x;y"}},
		{in: "echo $HOME; ls | wc", msg: `";" outside quotes: no shell runs the command (Compose would drop what follows it); quote it, or write ["sh", "-c", "..."] for a shell`},
		{in: "a > b", msg: `">" outside quotes: no shell runs the command (Compose would drop what follows it); quote it, or write ["sh", "-c", "..."] for a shell`},
		{in: "a \\\nb", want: []string{"a", "\nb"}},
		{in: "", want: nil},
		{in: "echo 'x", msg: "a single quote is not closed"},
		{in: `echo "x`, msg: "a double quote is not closed"},
		{in: `echo x\`, msg: "the string ends with a lone backslash"},
	}
	for _, tt := range tests {
		got, msg := splitCommand(tt.in)
		if msg != tt.msg {
			t.Errorf("splitCommand(%q) problem = %q, want %q", tt.in, msg, tt.msg)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("splitCommand(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestBad checks each testdata/bad/NAME.yaml against NAME.err, which holds
// the whole error text. Run with -update to rewrite the .err files, then
// read the diff.
func TestBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad/*.yaml (err %v)", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			f, err := Load(file)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Load took %v", took)
			}
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", file, f)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test ./spec -run TestBad -update to create it)", rerr)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("errors of %s mismatch (-want +got):\n%s", file, diff)
			}
			// Every line is one *Error, in file order.
			var list []*Error
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var se *Error
				if !errors.As(e, &se) {
					t.Fatalf("%T is not a *spec.Error: %v", e, e)
				}
				list = append(list, se)
			}
			for i := 1; i < len(list); i++ {
				a, b := list[i-1].Pos, list[i].Pos
				if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
					t.Errorf("errors out of order: %v before %v", list[i-1], list[i])
				}
			}
		})
	}
}

func TestProjectFromFolder(t *testing.T) {
	tests := []struct {
		path, want, msg string
	}{
		{path: "/x/lab/topo.yaml", want: "lab"},
		{path: "/x/My Lab.v2!/topo.yaml", want: "mylabv2"},
		{path: "/x/__Net-Lab_/topo.yaml", want: "net-lab_"},
		{path: "/x/___/topo.yaml", msg: `/x/___/topo.yaml: no project name: the folder name "___" does not make one (Compose's rule: lowercase letters, digits, '-' and '_', at most 63); set name: in the file`},
		{path: "/topo.yaml", msg: `/topo.yaml: no project name: the folder name "/" does not make one (Compose's rule: lowercase letters, digits, '-' and '_', at most 63); set name: in the file`},
	}
	for _, tt := range tests {
		f, err := Parse(tt.path, []byte("containers: {a: }\n"))
		switch {
		case tt.msg != "":
			if err == nil || err.Error() != tt.msg {
				t.Errorf("Parse(%q) error = %v, want %s", tt.path, err, tt.msg)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tt.path, err)
		case f.Project != tt.want || f.ProjectPos != (Pos{}):
			t.Errorf("Parse(%q) project = %q at %v, want %q at no position", tt.path, f.Project, f.ProjectPos, tt.want)
		}
	}
	// A relative path names the folder it resolves to.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("topo.yaml", []byte("containers: {a: }\n"))
	if err != nil || f.Project != filepath.Base(wd) {
		t.Errorf("Parse(topo.yaml) = %v, %v; want project %q", f, err, filepath.Base(wd))
	}
	// name: wins over the folder, however bad the folder's name.
	f, err = Parse("/x/___/topo.yaml", []byte("name: ok\n"))
	if err != nil || f.Project != "ok" {
		t.Errorf("Parse with name: = %v, %v; want project ok", f, err)
	}
}

func TestCheckProjectName(t *testing.T) {
	for _, ok := range []string{"a", "shop", "my_lab-2", "0", strings.Repeat("a", 63)} {
		if err := CheckProjectName(ok); err != nil {
			t.Errorf("CheckProjectName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "_a", "A", "a b", "a.b", strings.Repeat("a", 64)} {
		if err := CheckProjectName(bad); err == nil {
			t.Errorf("CheckProjectName(%q) = nil, want an error", bad)
		}
	}
	want := `project name "My_Lab" is not valid: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters, e.g. "my_lab"`
	if err := CheckProjectName("My_Lab"); err == nil || err.Error() != want {
		t.Errorf("CheckProjectName(My_Lab) = %v, want %s", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{"t.yaml", Pos{Line: 3, Col: 7}, "bad"}, "t.yaml:3:7: bad"},
		{Error{"t.yaml", Pos{Line: 3, Col: 0}, "bad"}, "t.yaml:3: bad"},
		{Error{"t.yaml", Pos{}, "bad"}, "t.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
	// errors.As finds the first problem of a joined error.
	_, err := Parse("/x/lab/topo.yaml", []byte("containers:\n  a: {ports: [0]}\n  b: {bad: 1}\n"))
	var se *Error
	if !errors.As(err, &se) || se.Pos != (Pos{Line: 2, Col: 15}) {
		t.Errorf("errors.As(%v) = %v, want the problem at 2:15", err, se)
	}
}

func TestManyProblemsAreCapped(t *testing.T) {
	// A file with thousands of problems shows the first hundred, in file
	// order, and counts the rest: topo's format and Compose's alike.
	// The services have one problem more: the 3000 of them join the
	// default network, more than a bridge holds (MaxBridgePorts).
	for _, top := range []struct {
		key, kind string
		more      int
	}{{"networks", "network", 2900}, {"services", "service", 2901}} {
		var b strings.Builder
		b.WriteString(top.key + ":\n")
		for i := range 3000 {
			fmt.Fprintf(&b, "  \"-n%d\": {}\n", i)
		}
		_, err := Parse("/x/lab/topo.yaml", []byte(b.String()))
		if err == nil {
			t.Fatalf("%s: Parse succeeded, want errors", top.key)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != maxErrors+1 {
			t.Fatalf("%s: got %d lines, want %d", top.key, len(lines), maxErrors+1)
		}
		first, last := fmt.Sprintf("/x/lab/topo.yaml:2:3: %s name \"-n0\"", top.kind), fmt.Sprintf("/x/lab/topo.yaml:101:3: %s name \"-n99\"", top.kind)
		if !strings.HasPrefix(lines[0], first) || !strings.HasPrefix(lines[99], last) {
			t.Errorf("%s: first and last shown: %q, %q; want -n0 and -n99", top.key, lines[0], lines[99])
		}
		if last, want := lines[len(lines)-1], fmt.Sprintf("... and %d more errors", top.more); last != want {
			t.Errorf("%s: last line = %q, want %q", top.key, last, want)
		}
	}
}

// TestHostileValuesAreClipped feeds values of thousands of bytes, and of
// NUL bytes (which %q prints as four each), to every kind of message: none
// may quote more than about 80 bytes of them.
func TestHostileValuesAreClipped(t *testing.T) {
	long := strings.Repeat("x", 5000)
	nuls := strings.Repeat(`\0`, 300)
	// Keys of over 1024 bytes must be explicit (? KEY) in YAML.
	src := fmt.Sprintf(`name: "%[1]s"
networks:
  ? "%[1]s"
  : {}
  "%[2]s": {}
  n:
    subnet: "%[1]s"
    driver: "%[1]s"
    ? "%[1]s"
    : 1
containers:
  "%[2]s": {}
  c:
    hostname: "%[1]s"
    network_mode: "%[1]s"
  d:
    networks:
      n: {aliases: ["%[1]s", "%[2]s"], ipv4_address: "%[1]s"}
      ? "%[1]s"
      : {}
    ports: ["%[1]s", "80:%[1]s", "%[1]s:80", "1:2:%[1]s", "80/%[1]s", "1-%[1]s:1-2", "%[2]s"]
    command: ["%[2]s"]
  e:
    network_mode: "container:%[1]s"
`, long, nuls)
	// The same in a Compose file, with the keys only Compose has.
	compose := fmt.Sprintf(`services:
  ? "%[1]s"
  : {}
  "%[2]s": {container_name: "%[2]s"}
  a:
    container_name: "%[1]s"
    hostname: "%[2]s"
    network_mode: "service:%[1]s"
    entrypoint: ["%[2]s"]
    command: "%[1]s '"
  b:
    networks:
      n: {priority: "%[1]s", gw_priority: "%[1]s", ipv4_address: "%[1]s", aliases: ["%[2]s"]}
      ? "%[1]s"
      : {}
    ports:
      - {target: "%[1]s"}
      - {target: 80, published: "%[1]s", host_ip: "%[1]s"}
      - {target: 80, protocol: "%[1]s"}
      - {target: 80, mode: "%[1]s"}
      - target: 80
        ? "%[1]s"
        : 1
  c:
    profiles: ["%[1]s"]
networks:
  n:
    driver: "%[1]s"
    internal: "%[1]s"
    ipam:
      driver: "%[1]s"
      config:
        - {subnet: "%[1]s"}
        - {subnet: 10.1.0.0/16, gateway: "%[1]s", ip_range: "%[1]s", aux_addresses: {x: "%[1]s"}}
  m:
    ? "%[1]s"
    : 1
? "%[1]s"
: 1
`, long, nuls)
	quoted := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	for i, src := range []string{src, compose,
		"include: [\"" + long + "\"]\nservices: {}\n", // files it names
		"include: [\"" + nuls + "\"]\nservices: {}\n",
		"include: [{path: a, env_file: \"" + long + "\"}]\nservices: {}\n",
		"services: {a: {extends: {file: \"" + long + "\", service: b}}}\n",
		"services: {a: {extends: \"" + long + "\"}}\n",
		"services: {a: {command: \"${" + strings.Repeat("X", 5000) + ":?" + long + "}\"}}\n",
		"networks: *" + long + "\n",       // an unknown anchor
		"networks: !" + long + " 1\n",     // a tag of its own
		"networks:\n  a: [" + long + "\n", // YAML that ends too soon
	} {
		_, err := Parse("/x/lab/topo.yaml", []byte(src))
		if err == nil {
			t.Fatalf("source %d: Parse succeeded, want errors", i)
		}
		lines := strings.Split(err.Error(), "\n")
		if i <= 1 && len(lines) < 15 {
			t.Errorf("only %d problems reported:\n%v", len(lines), err)
		}
		for _, line := range lines {
			for _, q := range quoted.FindAllString(line, -1) {
				if len(q) > 82 {
					t.Errorf("a message quotes %d bytes: %.200s", len(q), line)
				}
			}
			if strings.Contains(line, strings.Repeat("x", 81)) || strings.Contains(line, strings.Repeat(`\x00`, 21)) {
				t.Errorf("a message holds more than 80 bytes of a value: %.200s", line)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	t.Run("file too large", func(t *testing.T) {
		big := "x-pad: \"" + strings.Repeat("a", maxFileSize) + "\"\n"
		path := filepath.Join(t.TempDir(), "topo.yaml")
		if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
			t.Errorf("Load(5 MiB) = %v, want a size error", err)
		}
	})
	t.Run("deep but within yaml's limit", func(t *testing.T) {
		// Nesting yaml.v3 accepts must not trouble topo either.
		src := "containers: {a: }\nx-deep: " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\n"
		if _, err := Parse("/x/lab/topo.yaml", []byte(src)); err != nil {
			t.Errorf("Parse: %v", err)
		}
	})
	t.Run("many aliases within bounds", func(t *testing.T) {
		// Ordinary anchor use: one port list shared by a hundred containers.
		var b strings.Builder
		b.WriteString("x-ports: &p [\"80\", \"443\", \"53/udp\"]\ncontainers:\n")
		for i := range 100 {
			fmt.Fprintf(&b, "  c%d: {ports: *p}\n", i)
		}
		f, err := Parse("/x/lab/topo.yaml", []byte(b.String()))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if got := len(f.Containers[99].Ports); got != 3 {
			t.Errorf("container 99 has %d ports, want 3", got)
		}
	})
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestValidKeysIsACopy(t *testing.T) {
	k := ValidKeys()
	k["file"][0] = "changed"
	delete(k, "network")
	if again := ValidKeys(); again["file"][0] != "name" || again["network"] == nil {
		t.Errorf("ValidKeys shares its maps with callers: %v", again)
	}
}

func TestExamples(t *testing.T) {
	f, err := Load("../examples/three/topo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The e2e tests count on these addresses: a=.2, b=.3, c=.4.
	var got []string
	for _, c := range f.Containers {
		for _, a := range c.Networks {
			got = append(got, c.Name+"@"+a.Network)
		}
	}
	want := []string{"a@lan", "b@lan", "c@lan"}
	if diff := cmp.Diff(want, got); diff != "" || f.Project != "three" || f.Network("lan").Subnet != netip.MustParsePrefix("172.30.0.0/24") {
		t.Errorf("examples/three: project %q, lan %v, attachments (-want +got):\n%s", f.Project, f.Network("lan").Subnet, diff)
	}
}

// FuzzParse feeds Parse arbitrary bytes: it must never panic, must return
// a file or an error, and a file it returns must hold together.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/*/*.yaml")
	more, _ := filepath.Glob("testdata/*/*.yaml")
	for _, path := range append(seeds, more...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) < 8<<10 { // big seeds (deep nesting) make minimizing slow
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("/fuzz/lab/topo.yaml", data)
		if (file == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of file and error", file, err)
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "/fuzz/lab/topo.yaml:") {
					t.Fatalf("error line %q does not start with the path", line)
				}
			}
			return
		}
		if CheckProjectName(file.Project) != nil {
			t.Fatalf("invalid project %q accepted", file.Project)
		}
		for _, c := range file.Containers {
			if c.Hostname == "" {
				t.Fatalf("container %q has no hostname", c.Name)
			}
			if (c.Mode == ModeBridge) != (len(c.Networks) > 0) {
				t.Fatalf("container %q: mode %q with %d networks", c.Name, c.Mode, len(c.Networks))
			}
			for _, a := range c.Networks {
				if file.Network(a.Network) == nil {
					t.Fatalf("container %q joins undefined network %q", c.Name, a.Network)
				}
			}
			if c.Mode == ModeContainer && file.Container(c.ModeTarget) == nil {
				t.Fatalf("container %q shares undefined %q", c.Name, c.ModeTarget)
			}
		}
	})
}

// TestYAMLErrorLines pins the lines given for yaml.v3's syntax errors,
// which yaml.v3 counts differently for its scanner and its parser.
func TestYAMLErrorLines(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"a: b: c\n", "t.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"x: 1\ny: 2\na: b: c\n", "t.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"x: 1\ny: [a, b]]\n", "t.yaml:2: invalid YAML: did not find expected key"},
		{"x: 1\ny: 2\na: [1, 2\nb: 3\n", "t.yaml:3: invalid YAML: did not find expected ',' or ']'"},
		{"x: 1\ny:\n  - a\n  b: 3\n", "t.yaml:3: invalid YAML: did not find expected '-' indicator"},
		{"x: 1\n\ty: 2\n", "t.yaml:2: invalid YAML: found a tab character that violates indentation"},
		{"a: [", "t.yaml:1: invalid YAML: did not find expected node content"},
		{"x: 1\ny: *nope\n", "t.yaml:2:4: invalid YAML: unknown anchor 'nope' referenced"},
	}
	for _, tt := range tests {
		_, err := Parse("t.yaml", []byte(tt.src))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) = %v, want %s", tt.src, err, tt.want)
		}
	}
}

func TestDocumentMarkers(t *testing.T) {
	for _, src := range []string{
		"---\ncontainers: {a: }\n",
		"containers: {a: }\n---\n",
		"containers: {a: }\n...\n",
		"containers: {a: }\n---\n# nothing more\n---\n",
	} {
		if _, err := Parse("/x/lab/topo.yaml", []byte(src)); err != nil {
			t.Errorf("Parse(%q): %v", src, err)
		}
	}
}

func TestQuoteListAndClip(t *testing.T) {
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("n%d", i))
	}
	want := `"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", and 2 more`
	if got := quoteList(names); got != want {
		t.Errorf("quoteList = %s, want %s", got, want)
	}
	// clip keeps what fits in 80 bytes, cuts on a rune boundary, and
	// counts escapes as %q prints them.
	for _, c := range []struct{ in, want string }{
		{strings.Repeat("é", 40), strings.Repeat("é", 40)},
		{strings.Repeat("é", 50), strings.Repeat("é", 38) + "..."},
		{strings.Repeat("\x00", 20), strings.Repeat("\x00", 20)},
		{strings.Repeat("\x00", 21), strings.Repeat("\x00", 19) + "..."},
		{strings.Repeat("\xff", 30), strings.Repeat("\xff", 19) + "..."},
	} {
		if got := clip(c.in); got != c.want {
			t.Errorf("clip(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBridgePortLimit: a bridge network that more containers join than a
// bridge has ports is refused at the first container past the limit, with
// the count and how many networks would hold them; at the limit it is
// accepted. Without the check the kernel refuses the 1024th veth (EXFULL)
// half way through an up, which then rolls back over a thousand steps.
func TestBridgePortLimit(t *testing.T) {
	file := func(n int, extra string) []byte {
		var b strings.Builder
		b.WriteString("name: big\nnetworks:\n  lan: {subnet: 10.1.0.0/16}\n  other: {subnet: 10.2.0.0/16}\ncontainers:\n")
		for i := range n {
			fmt.Fprintf(&b, "  c%d: {networks: [lan]}\n", i)
		}
		b.WriteString(extra)
		return []byte(b.String())
	}
	if _, err := Parse("big.yaml", file(MaxBridgePorts, "  d: {networks: [other]}\n")); err != nil {
		t.Fatalf("%d containers on one bridge: %v", MaxBridgePorts, err)
	}
	_, err := Parse("big.yaml", file(MaxBridgePorts+2, ""))
	// c1023 is the 1024th container, on line 6+1023.
	want := fmt.Sprintf(`big.yaml:%d:22: network "lan" (line 3): 1025 containers join it, and a bridge holds at most 1023 (the kernel's 1024 ports, less port 0): container "c1023" is the 1024th; spread the containers over 2 or more networks`, 6+MaxBridgePorts)
	if err == nil || err.Error() != want {
		t.Fatalf("%d containers on one bridge: got %v\nwant %s", MaxBridgePorts+2, err, want)
	}
}
