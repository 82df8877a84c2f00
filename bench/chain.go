package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The chain lab (-chain N): N routers in a row, each joined to the next
// by a point-to-point link with a /31, forwarding on, and two static
// routes each (to the two far blocks, through the neighbour on their
// side): N-1 links and 2N routes. topo's up and down of its file are timed
// against a batched script that makes the same: one `ip -batch` for the
// namespaces and the veth pairs, one `ip -n NS -batch` per router for its
// links' state, addresses and routes, and one `ip netns exec` per router
// for its sysctl.

// chainLab is the lab of n routers.
type chainLab struct{ n int }

func (c chainLab) router(i int) string { return fmt.Sprintf("r%d", i) }

// linkAddr is the address of router i's end (side 0 left, 1 right) of
// link j, between routers j and j+1: 10.200.0.0/16 in /31s.
func (c chainLab) linkAddr(j, side int) netip.Addr {
	a := netip.MustParseAddr("10.200.0.0").As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(2*j + side)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Far blocks each router routes: the left one through its left
// neighbour, the right one through its right (the chain's ends route
// both through their only neighbour).
var chainLeft, chainRight = "10.201.0.0/16", "10.202.0.0/16"

// routes are router i's two routes: destination and next hop.
func (c chainLab) routes(i int) [][2]string {
	left, right := c.linkAddr(i-1, 0), c.linkAddr(i, 1)
	switch {
	case i == 0:
		left = right
	case i == c.n-1:
		right = left
	}
	return [][2]string{{chainLeft, left.String()}, {chainRight, right.String()}}
}

func (c chainLab) yaml() string {
	var b strings.Builder
	b.WriteString("name: chain\ncontainers:\n")
	for i := range c.n {
		fmt.Fprintf(&b, "  %s:\n    sysctls: {net.ipv4.ip_forward: 1}\n    routes:\n", c.router(i))
		for _, r := range c.routes(i) {
			fmt.Fprintf(&b, "      - {to: %s, via: %s}\n", r[0], r[1])
		}
	}
	b.WriteString("links:\n")
	for j := range c.n - 1 {
		fmt.Fprintf(&b, "  - endpoints:\n      - {container: %s, interface: right, address: %s/31}\n      - {container: %s, interface: left, address: %s/31}\n",
			c.router(j), c.linkAddr(j, 0), c.router(j+1), c.linkAddr(j, 1))
	}
	return b.String()
}

func (c chainLab) ns(i int) string { return "s-" + c.router(i) }

// scripts are the batched script's up and down.
func (c chainLab) scripts() scripts {
	var up, down strings.Builder
	up.WriteString(scriptHead)
	up.WriteString("ip -batch - <<'EOF'\n")
	for i := range c.n {
		fmt.Fprintf(&up, "netns add %s\n", c.ns(i))
	}
	for j := range c.n - 1 {
		fmt.Fprintf(&up, "link add right netns %s type veth peer name left netns %s\n", c.ns(j), c.ns(j+1))
	}
	up.WriteString("EOF\n")
	for i := range c.n {
		fmt.Fprintf(&up, "ip -n %s -batch - <<'EOF'\nlink set lo up\n", c.ns(i))
		if i > 0 {
			fmt.Fprintf(&up, "link set left up\naddress add %s/31 dev left\n", c.linkAddr(i-1, 1))
		}
		if i < c.n-1 {
			fmt.Fprintf(&up, "link set right up\naddress add %s/31 dev right\n", c.linkAddr(i, 0))
		}
		for _, r := range c.routes(i) {
			fmt.Fprintf(&up, "route add %s via %s proto 211\n", r[0], r[1])
		}
		fmt.Fprintf(&up, "EOF\nip netns exec %s sysctl -qw net.ipv4.ip_forward=1\n", c.ns(i))
	}
	down.WriteString(scriptHead)
	down.WriteString("ip -batch - <<'EOF'\n")
	for i := range c.n {
		fmt.Fprintf(&down, "netns del %s\n", c.ns(i))
	}
	down.WriteString("EOF\n")
	return scripts{up.String(), down.String()}
}

// runChain times topo and the batched script on the chain of n routers,
// o.runs times each, and prints a row for BENCHMARKS.md.
func runChain(o *options, n int, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "topo-bench-chain-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := chainLab{n: n}
	yaml := filepath.Join(dir, "topo.yaml")
	s := c.scripts()
	upSh, downSh := filepath.Join(dir, "up.sh"), filepath.Join(dir, "down.sh")
	for p, content := range map[string]string{yaml: c.yaml(), upSh: s.up, downSh: s.down} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	base, err := baseline()
	if err != nil {
		return err
	}
	type times struct{ up, down []time.Duration }
	res := map[string]*times{toolTopo: {}, toolBatched: {}}
	loadBefore := loadavg()
	for r := range o.runs {
		order := []string{toolTopo, toolBatched}
		if r%2 == 1 {
			// Neither always runs first after the other's teardown.
			order[0], order[1] = order[1], order[0]
		}
		for _, tool := range order {
			up, down := []string{o.topo, "-f", yaml, "up"}, []string{o.topo, "-f", yaml, "down"}
			if tool == toolBatched {
				up, down = []string{"bash", upSh}, []string{"bash", downSh}
			}
			u, err := measure(o.timeout, up)
			if err != nil {
				return fmt.Errorf("chain %d, %s up: %w", n, tool, err)
			}
			if got, err := count(); err != nil {
				return err
			} else if got.namespaces != base.namespaces+n {
				return fmt.Errorf("chain %d, %s up: %s, want %d namespaces", n, tool, got, base.namespaces+n)
			}
			if tool == toolTopo {
				// Converged: a plan has nothing to do (untimed).
				if _, err := measure(o.timeout, []string{o.topo, "-f", yaml, "plan", "--detailed-exitcode"}); err != nil {
					return fmt.Errorf("chain %d: no-op plan: %w", n, err)
				}
			}
			d, err := measure(o.timeout, down)
			if err != nil {
				return fmt.Errorf("chain %d, %s down: %w", n, tool, err)
			}
			for deadline := time.Now().Add(o.timeout); ; time.Sleep(time.Millisecond) {
				if got, err := count(); err != nil || got == base || time.Now().After(deadline) {
					break
				}
			}
			res[tool].up, res[tool].down = append(res[tool].up, u.wall), append(res[tool].down, d.wall)
			fmt.Fprintf(stderr, "chain %d run %d/%d  %-15s up %6.3fs  down %6.3fs\n", n, r+1, o.runs, tool, u.wall.Seconds(), d.wall.Seconds())
		}
	}
	t, b := res[toolTopo], res[toolBatched]
	fmt.Fprintf(stdout, "| chain of %d routers (%d links, %d routes) | %s | %s | %s | %s | %.2f× | %.2f× |\n",
		n, n-1, 2*n, secs(median(t.up)), secs(median(t.down)), secs(median(b.up)), secs(median(b.down)),
		median(t.up).Seconds()/median(b.up).Seconds(), median(t.down).Seconds()/median(b.down).Seconds())
	fmt.Fprintf(stdout, "\n(medians of %d runs; load %s before, %s after)\n", o.runs, loadBefore, loadavg())
	return nil
}
