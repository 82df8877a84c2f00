// Package e2e runs the real topo binary on real files inside private
// namespaces (see internal/sandbox) and checks the kernel and real traffic.
package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/hosts"
	"github.com/topolab/topo/internal/sandbox"
)

// topoBin is the binary under test, built once by TestMain.
var topoBin string

func TestMain(m *testing.M) {
	hosts.PingMain()
	agentMain()
	dir, err := os.MkdirTemp("", "topo-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	topoBin = filepath.Join(dir, "topo")
	_, self, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", topoBin, "./cmd/topo")
	build.Dir = filepath.Join(filepath.Dir(self), "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building topo: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// host is one private machine for a test: a sandbox with topo's runtime
// folder inside it, or a host of a multi-host world (internal/hosts).
type host struct {
	commander
	t *testing.T
}

// commander runs commands on a machine of a test.
type commander interface {
	Command(name string, args ...string) *exec.Cmd
}

func newHost(t *testing.T) *host {
	t.Helper()
	return &host{commander: sandbox.New(t), t: t}
}

// topo runs the binary inside the host and returns stdout, stderr and the
// exit status.
func (h *host) topo(args ...string) (string, string, int) {
	h.t.Helper()
	cmd := h.Command(topoBin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("topo %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// mustTopo runs topo and fails the test unless it exits 0.
func (h *host) mustTopo(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.topo(args...)
	if code != 0 {
		h.t.Fatalf("topo %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// sh runs a shell command inside the host and returns its combined output
// and whether it succeeded.
func (h *host) sh(script string) (string, bool) {
	h.t.Helper()
	out, err := h.Command("sh", "-c", script).CombinedOutput()
	return string(out), err == nil
}

func (h *host) mustSh(script string) string {
	h.t.Helper()
	out, ok := h.sh(script)
	if !ok {
		h.t.Fatalf("%s:\n%s", script, out)
	}
	return out
}

// ipLink is the part of `ip -j link` and `ip -j addr` the tests read.
type ipLink struct {
	Name     string `json:"ifname"`
	Master   string `json:"master"`
	Alias    string `json:"ifalias"`
	MAC      string `json:"address"`
	Operstat string `json:"operstate"`
	Flags    []string
	AddrInfo []struct {
		Family string `json:"family"`
		Local  string `json:"local"`
		Prefix int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// links lists the links of a namespace ("" is the host) with their IPv4
// addresses.
func (h *host) links(ns string) []ipLink {
	h.t.Helper()
	cmd := "ip -j addr show"
	if ns != "" {
		cmd = "ip -j -n " + ns + " addr show"
	}
	out := h.mustSh(cmd)
	var ls []ipLink
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		h.t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return ls
}

func (l ipLink) ipv4() []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == "inet" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.Prefix))
		}
	}
	return out
}

// writeFile puts a topology file in a fresh folder and returns its path.
func writeFile(t *testing.T, project, content string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), project)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "topo.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// example returns the path of examples/NAME/topo.yaml.
func example(name string) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "examples", name, "topo.yaml")
}

// snapshot is everything a test compares to prove nothing changed:
// namespaces, links, addresses, routes and the firewall. A table with no
// rule, no chain of its own and no policy but ACCEPT is left out: nft
// makes such an empty table the first time a program reads or writes it,
// and it filters nothing.
func (h *host) snapshot() string {
	h.t.Helper()
	// DAD is the kernel's: an IPv6 address can stop being tentative
	// between two snapshots (it takes seconds on a loaded machine).
	return h.mustSh(`ip netns list; ip -o addr | sed 's/ tentative//'; ip -o link | sed 's/link\/ether.*//'; ip route; ` + iptablesSave + `; find /run/topo /etc/netns -mindepth 1 2>/dev/null | sort || true`)
}

// iptablesSave prints the rules without comments, counters or empty tables.
const iptablesSave = `iptables-save 2>/dev/null | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//' | awk '/^\*/{t=$0;b="";k=0;next} /^COMMIT/{if(k)printf "%s\n%sCOMMIT\n",t,b;next} {b=b $0 "\n"} /^-A|^:[^ ]+ (-|DROP)/{k=1}' || true`
