package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRoutersExample brings up examples/routers: h1 reaches h2 only
// through r1 and r2 (the LANs are internal), over their point-to-point
// link; the hops are the two routers; the routes carry topo's protocol,
// and one made by hand stays; taking r1's forwarding away in the file
// breaks the path after up, putting it back repairs it, each a change of
// one sysctl in place.
func TestRoutersExample(t *testing.T) {
	h := newHost(t)
	src, err := os.ReadFile(example("routers"))
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "routers", string(src))
	h.mustTopo("up", "-f", file)

	ping := func() (string, bool) { return h.sh("ip netns exec routers-h1 ping -c1 -W2 10.2.0.10") }
	if out, ok := ping(); !ok {
		t.Fatalf("h1 does not reach h2 through the routers:\n%s\n%s", out, h.mustSh("ip -n routers-r1 route; ip -n routers-r2 route; ip -n routers-h1 route; ip -n routers-h2 route"))
	}
	// The hops, as traceroute finds them: the first TTLs run out at r1's
	// address on lan1, then at r2's end of the link.
	for ttl, want := range map[int]string{1: "From 10.1.0.254", 2: "From 10.0.12.1"} {
		out, _ := h.sh(fmt.Sprintf("ip netns exec routers-h1 ping -n -c1 -W2 -t %d 10.2.0.10", ttl))
		if !strings.Contains(out, want) || !strings.Contains(out, "exceeded") {
			t.Errorf("hop %d: want time exceeded %s:\n%s", ttl, want, out)
		}
	}
	if out, _ := h.sh("ip netns exec routers-h1 ping -n -c1 -W2 -t 3 10.2.0.10"); !strings.Contains(out, "1 received") {
		t.Errorf("TTL 3 does not reach h2, two routers away:\n%s", out)
	}

	routes := h.mustSh("ip -n routers-r1 route show proto 211")
	if !strings.Contains(routes, "10.2.0.0/24 via 10.0.12.1 dev eth9") {
		t.Errorf("r1's route of the file, with proto 211:\n%s", routes)
	}
	if out := h.mustSh("ip -n routers-h2 route show default"); !strings.Contains(out, "default via 10.2.0.254 dev eth0 proto 211") {
		t.Errorf("h2's default route of the file:\n%s", out)
	}
	link := h.mustSh("ip -n routers-r1 -d link show eth9; ip -n routers-r1 addr show eth9; ip -n routers-r1 link show lan")
	for _, want := range []string{"mtu 9000", "10.0.12.0/31", "veth", "topo:routers:link:r1/eth9 r2/eth9", "02:00:00:00:01:01"} {
		if !strings.Contains(link, want) {
			t.Errorf("r1's eth9 and lan lack %q:\n%s", want, link)
		}
	}
	if out := h.mustSh("tc -n routers-r2 qdisc show dev eth9"); !strings.Contains(out, "tbf") || !strings.Contains(out, "rate 100Mbit") {
		t.Errorf("r2's end of the link is not limited to 100 Mbit/s:\n%s", out)
	}

	// ps, inspect and graph show the links, routes, sysctls and rate.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"ps"}, []string{"eth9=10.0.12.0/31 to r2:eth9"}},
		{[]string{"inspect", "r1"}, []string{"link          eth9 10.0.12.0/31 to r2:eth9 mac ", "mtu 9000 qdisc tbf rate 100mbit",
			"route         10.2.0.0/24 via 10.0.12.1 dev eth9 proto 211", "sysctl        net.ipv4.ip_forward=1", "lan 10.1.0.254/24 mac 02:00:00:00:01:01"}},
		{[]string{"inspect", "r1", "--json"}, []string{`"peer": "r2:eth9"`, `"net.ipv4.ip_forward": "1"`, `"topo": true`}},
		{[]string{"graph"}, []string{"ctr_r1 -- ctr_r2", "eth9 10.0.12.0/31 — eth9 10.0.12.1/31", "tbf rate 100mbit"}},
	} {
		out := h.mustTopo(append([]string{c.args[0], "-f", file}, c.args[1:]...)...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("topo %s lacks %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}

	// Idempotent, and a route made by hand is left alone.
	h.mustSh("ip -n routers-r1 route add 10.9.0.0/24 via 10.0.12.1")
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up, with a route added by hand: exit %d\n%s", code, out)
	}

	// Forwarding off on r1: one sysctl, in r1's namespace.
	noFwd := strings.Replace(string(src), "    sysctls: {net.ipv4.ip_forward: 1}\n    routes:\n      - {to: 10.2.0.0/24", "    routes:\n      - {to: 10.2.0.0/24", 1)
	if noFwd == string(src) {
		t.Fatal("the example's r1 has no forwarding sysctl to take away")
	}
	if err := os.WriteFile(file, []byte(noFwd), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "~ ip netns exec routers-r1 sysctl -w net.ipv4.ip_forward=0  # container r1") || !strings.Contains(plan, "0 to add, 1 to change, 1 to destroy") {
		t.Errorf("plan without r1's forwarding: exit %d, want the sysctl put back and its record removed:\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := ping(); ok {
		t.Errorf("h1 still reaches h2 with r1 not forwarding:\n%s", out)
	}
	if got := strings.TrimSpace(h.mustSh("ip netns exec routers-r1 sysctl -n net.ipv4.ip_forward")); got != "0" {
		t.Errorf("r1's ip_forward is %s, want 0", got)
	}
	if out := h.mustSh("ip -n routers-r1 route"); !strings.Contains(out, "10.9.0.0/24 via 10.0.12.1") {
		t.Errorf("the route made by hand went:\n%s", out)
	}

	// Back: the path works again.
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := ping(); !ok {
		t.Errorf("h1 does not reach h2 once r1 forwards again:\n%s", out)
	}

	h.mustTopo("down", "-f", file)
	if out := h.mustSh("ip netns list; find /run/topo /etc/netns -mindepth 1 2>/dev/null || true"); out != "" {
		t.Errorf("down left:\n%s", out)
	}
}

// TestLinkRate: a link's rate is a tbf qdisc on both ends, and a bulk
// TCP transfer over it runs within 25% of it; changed in the file, up
// replaces the qdiscs and nothing else, and the transfer follows the new
// rate, with both containers' commands still running.
func TestLinkRate(t *testing.T) {
	h := newHost(t)
	src := func(rate string) string {
		return "name: rate\ncontainers:\n" +
			"  a: {command: [\"sleep\", \"3600\"]}\n  b: {command: [\"sleep\", \"3600\"]}\n  c: {command: [\"sleep\", \"3600\"]}\n" +
			"links:\n  - endpoints:\n" +
			"      - {container: a, interface: p0, address: 10.0.13.0/31}\n" +
			"      - {container: b, interface: p0, address: 10.0.13.1/31}\n" +
			"    impairment: {rate: " + rate + "}\n"
	}
	file := writeFile(t, "rate", src("20mbit"))
	h.mustTopo("up", "-f", file)
	pids := func() string {
		return h.mustSh("jq .pid /run/topo/rate/containers/a.pid /run/topo/rate/containers/b.pid /run/topo/rate/containers/c.pid")
	}
	before := pids()
	if out := h.mustSh("ip -n rate-a -o link"); strings.Contains(out, "eth0") {
		t.Errorf("a container with only a link got a network:\n%s", out)
	}

	within := func(want float64) {
		t.Helper()
		got := h.throughput("rate-b", "rate-a", "10.0.13.1", 3*time.Second)
		if got < want*0.75 || got > want*1.25 {
			t.Errorf("bulk TCP over a link of rate %.0f bit/s: %.0f bit/s, not within 25%%", want, got)
		} else {
			t.Logf("rate %.0f bit/s: measured %.0f bit/s", want, got)
		}
	}
	within(20e6)

	if err := os.WriteFile(file, []byte(src("5mbit")), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || strings.Count(plan, "qdisc replace dev p0 root tbf rate 5mbit") != 2 || !strings.Contains(plan, "0 to add, 2 to change, 0 to destroy") {
		t.Errorf("plan of 20mbit to 5mbit: exit %d, want both qdiscs replaced and nothing else:\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	within(5e6)
	if after := pids(); after != before {
		t.Errorf("commands restarted: pids %q, were %q", after, before)
	}
	// Without impairment, the qdiscs go.
	plain := strings.Replace(src("5mbit"), "    impairment: {rate: 5mbit}\n", "", 1)
	if err := os.WriteFile(file, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if out := h.mustSh("tc -n rate-a qdisc show dev p0; tc -n rate-b qdisc show dev p0"); strings.Contains(out, "tbf") {
		t.Errorf("the rate's qdiscs stayed:\n%s", out)
	}
	// A link added, then removed: no command restarts.
	if err := os.WriteFile(file, []byte(plain+"  - endpoints: [\"b:p1\", \"c:p1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if _, ok := h.sh("ip -n rate-c link show p1 | grep -q 'state UP'"); !ok {
		t.Errorf("the added link's end in c is not up:\n%s", h.mustSh("ip -n rate-c link"))
	}
	if err := os.WriteFile(file, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if out, ok := h.sh("ip -n rate-b link show p1"); ok {
		t.Errorf("the removed link's end stayed:\n%s", out)
	}
	if after := pids(); after != before {
		t.Errorf("adding and removing a link restarted commands: pids %q, were %q", after, before)
	}
}

// throughput runs a bulk TCP transfer from namespace from to a sink at
// addr in namespace to, for d, and returns the sink's rate in bits per
// second, measured after the first half second (TCP's slow start and the
// qdisc's first burst) to the end of the stream.
func (h *host) throughput(to, from, addr string, d time.Duration) float64 {
	h.t.Helper()
	sink := h.agentCmd(to, "sink", "5201")
	out, err := sink.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	var stderr strings.Builder
	sink.Stderr = &stderr
	if err := sink.Start(); err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = sink.Process.Kill(); _ = sink.Wait() }()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		h.t.Fatalf("sink did not start: %s", stderr.String())
	}
	blast := h.agentCmd(from, "blast", net.JoinHostPort(addr, "5201"), d.String())
	if b, err := blast.CombinedOutput(); err != nil {
		h.t.Fatalf("blast: %v\n%s", err, b)
	}
	if !lines.Scan() {
		h.t.Fatalf("sink said nothing: %s", stderr.String())
	}
	rate, err := strconv.ParseFloat(strings.TrimPrefix(lines.Text(), "rate "), 64)
	if err != nil {
		h.t.Fatalf("sink: %q: %v", lines.Text(), err)
	}
	return rate
}

// agentSink accepts one TCP connection on port, reads it to its end and
// prints "rate BITS_PER_SECOND", counted from half a second after its
// first byte.
func agentSink(port string) error {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	var start time.Time
	var n int64
	first := time.Time{}
	for {
		k, err := c.Read(buf)
		now := time.Now()
		if k > 0 && first.IsZero() {
			first = now
		}
		if !first.IsZero() && now.Sub(first) >= 500*time.Millisecond {
			if start.IsZero() {
				start = now
			} else {
				n += int64(k)
			}
		}
		if err == io.EOF {
			if start.IsZero() || !now.After(start) {
				return fmt.Errorf("the transfer ended within half a second")
			}
			fmt.Printf("rate %f\n", float64(n*8)/now.Sub(start).Seconds())
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// agentBlast sends zeros to addr for the duration given, as fast as TCP
// takes them.
func agentBlast(addr, dur string) error {
	d, err := time.ParseDuration(dur)
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return c.Close()
}

// kernelHasNetem says whether the sandbox's kernel can make a netem
// qdisc: it tries, on lo of a namespace of its own.
func (h *host) kernelHasNetem() (bool, string) {
	out, ok := h.sh("ip netns add netem-probe && tc -n netem-probe qdisc add dev lo root netem delay 1ms; r=$?; ip netns del netem-probe; exit $r")
	return ok, strings.TrimSpace(out)
}

const netemFile = "name: jitter\ncontainers:\n  a: {}\n  b: {}\nlinks:\n  - endpoints:\n" +
	"      - {container: a, interface: p0, address: 10.0.14.0/31}\n" +
	"      - {container: b, interface: p0, address: 10.0.14.1/31}\n" +
	"    impairment: {delay: 20ms, jitter: 2ms, loss: 0.5%, rate: 100mbit}\n"

// TestNetemRefused: where the kernel has no netem, plan and up refuse a
// delay before any step, naming the qdisc and its module, and change
// nothing.
func TestNetemRefused(t *testing.T) {
	h := newHost(t)
	if ok, _ := h.kernelHasNetem(); ok {
		t.Skip("the kernel has netem: nothing to refuse")
	}
	file := writeFile(t, "jitter", netemFile)
	before := h.snapshot()
	for _, cmd := range []string{"plan", "up"} {
		out, errOut, code := h.topo(cmd, "-f", file)
		if code == 0 || !strings.Contains(errOut, "netem") || !strings.Contains(errOut, "sch_netem") || !strings.Contains(errOut, "topo.yaml:9:17:") {
			t.Errorf("%s of a delay on a kernel without netem: exit %d, want a refusal at 9:17 naming netem and sch_netem:\n%s%s", cmd, code, out, errOut)
		}
		if strings.Contains(out, "ip netns add") {
			t.Errorf("%s printed steps before refusing:\n%s", cmd, out)
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("a refused up changed the machine:\n%s\nwas:\n%s", after, before)
	}
}

// TestNetemDelay: where the kernel has netem, a link's delay is in the
// round trip, both ways (20 ms each way: at least 40 ms).
func TestNetemDelay(t *testing.T) {
	h := newHost(t)
	if ok, why := h.kernelHasNetem(); !ok {
		t.Skipf("the kernel lacks the netem qdisc (kernel module sch_netem): %s", why)
	}
	file := writeFile(t, "jitter", netemFile)
	h.mustTopo("up", "-f", file)
	out, _ := h.sh("ip netns exec jitter-a ping -c5 -i0.2 10.0.14.1") // 0.5% loss may take one
	i := strings.Index(out, "rtt min/avg/max/mdev = ")
	if i < 0 {
		t.Fatalf("no round trip times:\n%s", out)
	}
	min, err := strconv.ParseFloat(strings.Split(out[i+len("rtt min/avg/max/mdev = "):], "/")[0], 64)
	if err != nil || min < 36 {
		t.Errorf("round trip over a 20ms±2ms link each way: min %.1f ms, want at least 36:\n%s", min, out)
	}
}

// labChain is what bigFile's containers: goes on with for a lab: n
// routers in a chain of links (/31s, the first at 10 Mbit/s), each
// forwarding, with a route to the far end of the chain either way.
func labChain(n int) string {
	var b strings.Builder
	addr := func(j, side int) string { return fmt.Sprintf("10.250.%d.%d", j/128, 2*(j%128)+side) }
	for i := range n {
		fmt.Fprintf(&b, "  lab%d:\n    sysctls: {net.ipv4.ip_forward: 1}\n    routes:\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "      - {to: 10.251.0.0/24, via: %s}\n", addr(i-1, 0))
		}
		if i < n-1 {
			fmt.Fprintf(&b, "      - {to: 10.252.0.0/24, via: %s}\n", addr(i, 1))
		}
	}
	b.WriteString("links:\n")
	for j := range n - 1 {
		fmt.Fprintf(&b, "  - endpoints:\n      - {container: lab%d, interface: right, address: %s/31}\n      - {container: lab%d, interface: left, address: %s/31}\n",
			j, addr(j, 0), j+1, addr(j, 1))
		if j == 0 {
			b.WriteString("    impairment: {rate: 10mbit}\n")
		}
	}
	return b.String()
}
