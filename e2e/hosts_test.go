package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEtcHostsAsDocker: a container's /etc/hosts has Docker's lines, and
// its own address with its hostname, the hostname's first label and its
// name, so that the container finds its own names without DNS (getent -s
// files reads only the hosts file).
func TestEtcHostsAsDocker(t *testing.T) {
	need(t, "getent")
	h := newHost(t)
	file := writeFile(t, "hosts", `name: hosts
networks:
  lan: {subnet: 10.66.0.0/24}
containers:
  a:
    hostname: somehost
    networks: [lan]
  b:
    hostname: db.lab.example
    networks: [lan]
  c:
    hostname: lonely
    network_mode: none
`)
	h.mustTopo("up", "-f", file)
	want := `# Written by topo for project hosts.
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
10.66.0.2	somehost a
`
	if got := h.mustTopo("exec", "-f", file, "a", "--", "cat", "/etc/hosts"); got != want {
		t.Errorf("/etc/hosts in a (-want +got):\n%s", cmp.Diff(want, got))
	}
	for _, c := range []struct{ container, name, want string }{
		{"a", "somehost", "10.66.0.2"},
		{"a", "localhost", "::1"}, // getent hosts asks for IPv6 first
		{"a", "ip6-allnodes", "ff02::1"},
		{"a", "ip6-allrouters", "ff02::2"},
		{"b", "db.lab.example", "10.66.0.3"},
		{"b", "db", "10.66.0.3"},
		{"b", "b", "10.66.0.3"},
		{"c", "lonely", "127.0.1.1"},
	} {
		out, _, code := h.topo("exec", "-f", file, c.container, "--", "getent", "-s", "files", "hosts", c.name)
		if f := strings.Fields(out); code != 0 || len(f) == 0 || f[0] != c.want {
			t.Errorf("in %s: getent -s files hosts %s = %q (exit %d), want %s", c.container, c.name, out, code, c.want)
		}
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "hosts")
}
