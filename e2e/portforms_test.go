package e2e

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sctpTool crafts and catches SCTP packets with raw IP sockets (protocol
// 132): this kernel tracks and NATs SCTP but has no SCTP sockets, so
// socat cannot speak it. "send DST PORT SPORT TAG" sends an INIT chunk
// with its CRC32c every 200 ms until killed; "recv PORT TAG SECONDS"
// prints "ready", then waits for an INIT of that initiate tag and prints
// "got SRC:SPORT -> DST:DPORT crc=ok|bad", or "timeout" and exits 1.
const sctpTool = `import socket, struct, sys, time

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff

def packet(sport, dport, tag):
    # INIT: type 1, flags 0, length 20, initiate tag, a_rwnd, streams out/in, initial TSN.
    chunk = struct.pack("!BBHIIHHI", 1, 0, 20, tag, 65535, 10, 10, tag ^ 0x5a5a5a5a)
    hdr = struct.pack("!HHII", sport, dport, 0, 0)
    crc = crc32c(hdr + chunk)
    return struct.pack("!HHI", sport, dport, 0) + struct.pack("<I", crc) + chunk

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
if sys.argv[1] == "send":
    dst, dport, sport, tag = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    while True:
        s.sendto(packet(sport, dport, tag), (dst, 0))
        time.sleep(0.2)
port, tag, deadline = int(sys.argv[2]), int(sys.argv[3]), time.time() + float(sys.argv[4])
print("ready", flush=True)
while time.time() < deadline:
    s.settimeout(max(0.01, deadline - time.time()))
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        break
    ihl = (data[0] & 15) * 4
    sctp = data[ihl:]
    if len(sctp) < 32 or sctp[12] != 1:
        continue
    sport, dport = struct.unpack("!HH", sctp[:4])
    if dport != port or struct.unpack("!I", sctp[16:20])[0] != tag:
        continue
    zeroed = sctp[:8] + b"\0\0\0\0" + sctp[12:]
    ok = struct.unpack("<I", sctp[8:12])[0] == crc32c(zeroed)
    print("got %s:%d -> %s:%d crc=%s" % (socket.inet_ntoa(data[12:16]), sport, socket.inet_ntoa(data[16:20]), dport, "ok" if ok else "bad"), flush=True)
    sys.exit(0)
print("timeout", flush=True)
sys.exit(1)
`

// writeSCTPTool writes sctpTool to a file of the test's own.
func writeSCTPTool(t *testing.T) string {
	t.Helper()
	tool := filepath.Join(t.TempDir(), "sctp.py")
	if err := os.WriteFile(tool, []byte(sctpTool), 0o644); err != nil {
		t.Fatal(err)
	}
	return tool
}

// sctpReach sends SCTP INITs from ns (the host for "") to addr:port and
// reports what a raw socket in the namespace to sees arrive for its port
// ctrPort ("" when nothing did within wait).
func (h *host) sctpReach(tool, from, addr string, port int, to string, ctrPort int, wait time.Duration) string {
	h.t.Helper()
	tag := rand.Uint32N(1<<31) + 1
	recv := h.Command("ip", "netns", "exec", to, "python3", tool, "recv", strconv.Itoa(ctrPort), fmt.Sprint(tag), fmt.Sprint(wait.Seconds()))
	out, err := recv.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		h.t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		recv.Wait()
		h.t.Fatalf("sctp receiver in %s did not start: %q", to, lines.Text())
	}
	send := h.Command("sh", "-c", in(from, fmt.Sprintf("python3 %s send %s %d %d %d", tool, addr, port, 40000+rand.IntN(20000), tag)))
	if err := send.Start(); err != nil {
		h.t.Fatal(err)
	}
	got := ""
	if lines.Scan() && strings.HasPrefix(lines.Text(), "got ") {
		got = strings.TrimPrefix(lines.Text(), "got ")
	}
	recv.Wait()
	_ = send.Process.Kill()
	_ = send.Wait()
	return got
}

// publishedOn reads `topo port CONTAINER PORT/PROTO`: the host ports of
// the publishes of that port on addr.
func (h *host) publishedOn(file, ctr, portProto, addr string) []int {
	h.t.Helper()
	var ports []int
	for _, line := range strings.Fields(h.mustTopo("port", "-f", file, ctr, portProto)) {
		a, p, ok := strings.Cut(line, ":")
		n, err := strconv.Atoi(p)
		if ok && err == nil && a == addr {
			ports = append(ports, n)
		}
	}
	return ports
}

// TestDockerPortForms brings up, in topo's own format, each of Docker's
// port forms that topo once refused, and sends real traffic through each
// protocol and binding: SCTP beside tcp and udp (one host port for all
// three), SCTP on a free port and on one host address, an empty host
// address and protocol, a line given twice. SCTP packets are crafted (an
// INIT with its CRC32c) and caught in the container by a raw socket, with
// the address and port DNAT gave them and a checksum NAT kept right.
func TestDockerPortForms(t *testing.T) {
	need(t, "socat", "ss", "python3")
	h := newHost(t)
	h.outside()
	tool := writeSCTPTool(t)
	file := writeFile(t, "forms", `name: forms
networks:
  lan: {subnet: 10.71.0.0/24}
containers:
  sig:
    networks: [lan]
    ports:
      - "65000:300/sctp"
      - "54000:400/udp"
      - "65000:500/tcp"
      - "3456/sctp"
      - "3456:3456/sctp"
      - "`+hostAddr+`::6000/sctp"
      - ":8080:6000/tcp"
      - "::6000"
      - "1234/"
      - "80-82/"
      - "9080:80"
      - "9080:80"
`)
	h.mustTopo("up", "-f", file)
	const ctr = "10.71.0.2"

	// topo port shows the SCTP publishes as /sctp; the line given twice
	// is one publish, with one DNAT rule.
	list := h.mustTopo("port", "-f", file, "sig")
	for _, want := range []string{"300/sctp -> 0.0.0.0:65000", "400/udp -> 0.0.0.0:54000", "500/tcp -> 0.0.0.0:65000", "3456/sctp -> 0.0.0.0:3456", "6000/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:9080"} {
		if !strings.Contains(list, want+"\n") {
			t.Errorf("topo port sig lacks %q:\n%s", want, list)
		}
	}
	if n := strings.Count(list, ":9080\n"); n != 1 {
		t.Errorf("9080:80 twice is %d publishes, want 1:\n%s", n, list)
	}
	if nat := h.mustSh("iptables -t nat -S"); len(regexp.MustCompile(`--dport 9080 `).FindAllString(nat, -1)) != 1 {
		t.Errorf("want one DNAT rule of port 9080:\n%s", nat)
	}
	sctpFree := h.publishedOn(file, "sig", "3456/sctp", "0.0.0.0")
	sctpOnHost := h.publishedOn(file, "sig", "6000/sctp", hostAddr)
	tcpFree6000 := h.publishedOn(file, "sig", "6000", "0.0.0.0")
	free1234 := h.publishedOn(file, "sig", "1234/tcp", "0.0.0.0")
	if len(sctpFree) != 2 || len(sctpOnHost) != 1 || len(tcpFree6000) != 2 || len(free1234) != 1 {
		t.Fatalf("publishes: 3456/sctp %v, 6000/sctp on %s %v, 6000/tcp %v, 1234/tcp %v; want 2, 1, 2, 1:\n%s", sctpFree, hostAddr, sctpOnHost, tcpFree6000, free1234, list)
	}
	low, high := 32768, 60999
	for _, p := range []int{sctpFree[0], sctpOnHost[0], tcpFree6000[0], free1234[0]} {
		if p != 3456 && p != 8080 && (p < low || p > high) {
			t.Errorf("a free port %d is outside the ephemeral range %d-%d", p, low, high)
		}
	}

	// TCP and UDP, from the outside.
	for _, port := range []int{500, 6000, 1234, 80, 81, 82} {
		h.serve("forms-sig", port, "tcp", "socat", fmt.Sprintf("TCP-LISTEN:%d,fork,reuseaddr", port), fmt.Sprintf("SYSTEM:echo p%d", port))
	}
	h.serve("forms-sig", 400, "udp", "socat", "UDP-RECVFROM:400,fork", "EXEC:cat")
	tcp := map[int]string{65000: "p500", 8080: "p6000", 9080: "p80"}
	for _, p := range tcpFree6000 {
		tcp[p] = "p6000"
	}
	tcp[free1234[0]] = "p1234"
	for i, p := range []int{80, 81, 82} {
		hp := h.publishedOn(file, "sig", fmt.Sprint(p), "0.0.0.0")
		if p == 80 {
			hp = slicesWithout(hp, 9080)
		}
		if len(hp) != 1 {
			t.Fatalf("port %d of 80-82/: host ports %v", p, hp)
		}
		tcp[hp[0]] = fmt.Sprintf("p%d", 80+i)
	}
	for hostPort, want := range tcp {
		if got, ok := h.tcpReach("outside", hostAddr, hostPort, true); !ok || got != want {
			t.Errorf("tcp %s:%d from outside = %q, want %q", hostAddr, hostPort, got, want)
		}
	}
	if got := h.udpEcho("outside", hostAddr, 54000, "ping-udp"); got != "ping-udp" {
		t.Errorf("udp %s:54000 from outside = %q", hostAddr, got)
	}

	// SCTP: each publish, from the outside and from the host itself
	// through 127.0.0.1, arrives at the container's address and port.
	for _, c := range []struct {
		from, addr       string
		port, ctrPort    int
		arrives, comment string
	}{
		{"outside", hostAddr, 65000, 300, "yes", "65000:300/sctp from outside"},
		{"", "127.0.0.1", 65000, 300, "yes", "65000:300/sctp from the host through 127.0.0.1"},
		{"outside", hostAddr, 3456, 3456, "yes", "3456:3456/sctp"},
		{"outside", hostAddr, slicesWithout(sctpFree, 3456)[0], 3456, "yes", "3456/sctp on its free port"},
		{"outside", hostAddr, sctpOnHost[0], 6000, "yes", hostAddr + "::6000/sctp at " + hostAddr},
		{"", "127.0.0.1", sctpOnHost[0], 6000, "no", hostAddr + "::6000/sctp at 127.0.0.1"},
	} {
		wait := 10 * time.Second
		if c.arrives == "no" {
			wait = 2 * time.Second
		}
		got := h.sctpReach(tool, c.from, c.addr, c.port, "forms-sig", c.ctrPort, wait)
		t.Logf("%s: %q", c.comment, got)
		switch {
		case c.arrives == "no" && got != "":
			t.Errorf("%s: arrived, but the publish is bound to %s: %s", c.comment, hostAddr, got)
		case c.arrives == "yes" && !strings.HasSuffix(got, fmt.Sprintf(" -> %s:%d crc=ok", ctr, c.ctrPort)):
			t.Errorf("%s: got %q, want an INIT to %s:%d with a good checksum", c.comment, got, ctr, c.ctrPort)
		}
	}

	h.mustTopo("down", "-f", file)
	assertClean(t, h, "forms")
}

// TestComposePortForms: the same forms in a Compose file, and what Docker
// accepts where ports cannot work: host mode's ports are discarded with
// a warning, an all-internal container's are accepted with a warning and
// make no rule; a fixed ipv4_address without a subnet lands in the subnet
// topo picks; the same publish in the short and the long syntax is one.
// Traffic: TCP and SCTP to web's publishes from the outside.
func TestComposePortForms(t *testing.T) {
	need(t, "socat", "ss", "python3")
	h := newHost(t)
	h.outside()
	tool := writeSCTPTool(t)
	dir := filepath.Join(t.TempDir(), "cforms")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(`services:
  web:
    command: socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:"echo web"
    networks:
      front: {ipv4_address: 172.17.0.50}
    ports:
      - "9080:80"
      - target: 80
        published: "9080"
      - "38412:38412/sctp"
  tool:
    network_mode: host
    ports: ["8081:80"]
  db:
    networks: [back]
    ports: ["5432:5432"]
networks:
  front: {}
  back: {internal: true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := h.topo("up", "-f", file)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"topo: " + file + `:13:5: container "tool": published ports are discarded when using host network mode (line 12)`,
		"topo: " + file + `:16:5: container "db": published ports are unreachable: all its networks are internal`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("up's stderr lacks %q:\n%s", want, errOut)
		}
	}
	if got := h.eth0("cforms-web"); !strings.Contains(got, "172.17.0.50/16") {
		t.Errorf("web's eth0 = %s, want 172.17.0.50/16 in the picked subnet 172.17.0.0/16", got)
	}
	nat := h.mustSh("iptables -t nat -S")
	if n := strings.Count(nat, "--dport 9080 "); n != 1 {
		t.Errorf("%d DNAT rules of 9080, want 1:\n%s", n, nat)
	}
	for _, port := range []string{"8081", "5432"} {
		if strings.Contains(nat, "--dport "+port+" ") {
			t.Errorf("a rule publishes %s, which Docker discards:\n%s", port, nat)
		}
	}
	if got, ok := h.tcpReach("outside", hostAddr, 9080, true); !ok || got != "web" {
		t.Errorf("tcp %s:9080 from outside = %q", hostAddr, got)
	}
	if got := h.sctpReach(tool, "outside", hostAddr, 38412, "cforms-web", 38412, 10*time.Second); !strings.HasSuffix(got, " -> 172.17.0.50:38412 crc=ok") {
		t.Errorf("sctp %s:38412 from outside: got %q", hostAddr, got)
	}

	// An address outside the subnet the network gets is refused before
	// any step, naming that subnet: 172.19.0.0/16, as cforms's front and
	// back hold 172.17 and 172.18.
	bad := filepath.Join(t.TempDir(), "cbad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(bad, "compose.yaml")
	if err := os.WriteFile(badFile, []byte("services:\n  a:\n    networks:\n      n: {ipv4_address: 10.9.0.10}\nnetworks:\n  n: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.snapshot()
	if _, errOut, code := h.topo("up", "-f", badFile); code != 1 || !strings.Contains(errOut, badFile+`:4:25: container a: ipv4_address 10.9.0.10 is outside subnet 172.19.0.0/16, which network "n" gets (the first free block of the pools on this host): give the network a subnet that holds the address`) {
		t.Errorf("up of an address outside the pick: exit %d\n%s", code, errOut)
	}
	if after := h.snapshot(); after != before {
		t.Errorf("a refused up changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	h.mustTopo("down", "-f", file)
	assertClean(t, h, "cforms")
}

func slicesWithout(s []int, v int) []int {
	var out []int
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
