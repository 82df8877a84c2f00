package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConcurrentUps starts two ups of one project together: one waits for
// the other's lock, both succeed, and the kernel matches the file, with
// traffic between containers.
func TestConcurrentUps(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "race", bigFile("race", 60))
	type result struct {
		out, errOut string
		code        int
	}
	var (
		wg  sync.WaitGroup
		res [2]result
	)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := h.topo("up", "-f", file)
			res[i] = result{out, errOut, code}
		}()
	}
	wg.Wait()
	waited := 0
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("up %d: exit %d\n%s\n%s", i, r.code, r.out, r.errOut)
		}
		if regexp.MustCompile(`Project race is locked by pid \d+; waiting`).MatchString(r.errOut) {
			waited++
		}
	}
	// One did the work; the other waited and then found nothing to do.
	if waited != 1 {
		t.Errorf("%d ups said they waited for the lock, want 1:\n%s\n%s", waited, res[0].errOut, res[1].errOut)
	}
	if !strings.Contains(res[0].out+res[1].out, "nothing to do") || !strings.Contains(res[0].out+res[1].out, "up done in ") {
		t.Errorf("want one up done and one with nothing to do:\n%s\n%s", res[0].out, res[1].out)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after both ups: exit %d, want 0", code)
	}
	h.mustSh("ip netns exec race-c000 ping -c1 -w10 " + addrOf(h, "race-c004") + " && ip netns exec race-c059 ping -c1 -w10 " + addrOf(h, "race-c003"))
	h.mustTopo("down", "-f", file)
	if left := h.leftovers("race"); left != "" {
		t.Errorf("down left:\n%s", left)
	}
}

func addrOf(h *host, ns string) string {
	a := h.eth0(ns)
	return a[:strings.IndexByte(a, '/')]
}

// TestLockTimeout: while another process holds the project's lock, up and
// down give up after --lock-timeout and name the holder's pid; a lock
// whose holder was killed is taken over at once.
func TestLockTimeout(t *testing.T) {
	h := newHost(t)
	file := example("three")
	// A holder that writes its pid and holds the flock, as topo does.
	holder := h.Command("sh", "-c", `mkdir -p /run/topo/three && echo $$ > /run/topo/three/lock && exec flock -o /run/topo/three/lock sh -c 'echo locked; exec sleep 60'`)
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	buf := make([]byte, 7)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder: %q %v", buf, err)
	}
	pid := strings.TrimSpace(h.mustSh("cat /run/topo/three/lock"))
	before := h.snapshot()
	for _, verb := range []string{"up", "down"} {
		_, errOut, code := h.topo(verb, "-f", file, "--lock-timeout", "300ms")
		if code != 1 || !strings.Contains(errOut, "is held by pid "+pid) || !strings.Contains(errOut, "--lock-timeout") {
			t.Errorf("%s while locked: exit %d, stderr:\n%s", verb, code, errOut)
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("a locked-out up changed the kernel:\n%s", cmp.Diff(before, after))
	}
	// kill -9 the holder (nsenter's child is the flock process): the lock
	// is free for the next topo, with the dead pid still in the file.
	h.mustSh("kill -9 " + pid)
	holder.Wait()
	_, errOut, code := h.topo("up", "-f", file, "--lock-timeout", "5s")
	if code != 0 || strings.Contains(errOut, "waiting") {
		t.Errorf("up after the holder died: exit %d, stderr:\n%s", code, errOut)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "three")
}

// TestDownAfterCrashWithoutFile: up is killed in the middle; plan reports
// the interrupted transaction; the file is deleted; down -p NAME alone
// leaves nothing.
func TestDownAfterCrashWithoutFile(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "gone", bigFile("gone", 40))
	for _, at := range []string{"7", "45", "130"} {
		cmd := h.Command(topoBin, "up", "-f", file)
		cmd.Env = append(os.Environ(), "TOPO_CRASH_AT="+at)
		err := cmd.Run()
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("up with TOPO_CRASH_AT=%s: %v, want it killed", at, err)
		}
		out, errOut, code := h.topo("plan", "-f", file, "--detailed-exitcode")
		if code != 2 || !strings.Contains(errOut, "an interrupted up (pid ") || !strings.Contains(errOut, "had started "+at+" of ") {
			t.Errorf("plan after the crash at %s: exit %d\n%s\n%s", at, code, out, errOut)
		}
		moved := file + ".moved"
		os.Rename(file, moved)
		out, errOut, code = h.topo("down", "-p", "gone")
		if code != 0 || !strings.Contains(errOut, "undoing it first") {
			t.Errorf("down -p after the crash at %s: exit %d\n%s\n%s", at, code, out, errOut)
		}
		if left := h.leftovers("gone"); left != "" {
			t.Errorf("down -p after the crash at %s left:\n%s", at, left)
		}
		os.Rename(moved, file)
	}
}

// TestFaultRollsBackThroughTheCLI fails one step of a real up (the
// test-only TOPO_FAULT_AT hook) and checks that the kernel is as before.
func TestFaultRollsBackThroughTheCLI(t *testing.T) {
	h := newHost(t)
	file := example("shop")
	before := h.snapshot()
	cmd := h.Command(topoBin, "up", "-f", file)
	cmd.Env = append(os.Environ(), "TOPO_FAULT_AT=9")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "fault injected by TOPO_FAULT_AT") || !strings.Contains(string(out), "rolled back 8 steps, the kernel is as it was") {
		t.Fatalf("up with a fault at step 9: %v\n%s", err, out)
	}
	if after := h.snapshot(); after != before {
		t.Errorf("kernel after the rollback (-before +after):\n%s", cmp.Diff(before, after))
	}
}

// badFiles are the parser's corpus of bad files plus documents too big to
// keep in the repository.
func badFiles(t *testing.T) []string {
	_, self, _, _ := runtime.Caller(0)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(self), "..", "spec", "testdata", "bad", "*.yaml"))
	if err != nil || len(files) < 20 {
		t.Fatalf("bad corpus: %d files, %v", len(files), err)
	}
	var huge strings.Builder
	huge.WriteString("name: huge\ncontainers:\n")
	for i := 0; huge.Len() < 5<<20; i++ {
		fmt.Fprintf(&huge, "  c%07d: {networks: [lan]}\n", i)
	}
	var deep strings.Builder
	deep.WriteString("name: deep\ncontainers:\n  a:\n    command: ")
	for range 100000 {
		deep.WriteString("[")
	}
	var full strings.Builder
	full.WriteString("name: full\nnetworks:\n  n: {subnet: 10.0.0.0/24}\ncontainers:\n")
	for i := range 300 {
		fmt.Fprintf(&full, "  c%d: {networks: [n]}\n", i)
	}
	for name, src := range map[string]string{"huge": huge.String(), "deep-unclosed": deep.String(), "subnet-full": full.String()} {
		files = append(files, writeFile(t, name, src))
	}
	return files
}

// posRE is how every line of an error about a file starts: FILE:LINE:COL,
// or FILE:LINE for YAML syntax errors (the YAML parser gives no column).
var posRE = regexp.MustCompile(`^(topo: )?(\S+?):(\d+):(\d+:)? `)

// TestBadInputChangesNothing runs up on every bad file: each is rejected
// with FILE:LINE:COL, and the kernel and runtime folder are unchanged.
func TestBadInputChangesNothing(t *testing.T) {
	h := newHost(t)
	// Something to leave alone: a project that is up.
	h.mustTopo("up", "-f", example("three"))
	before := h.settledSnapshot()
	for _, file := range badFiles(t) {
		_, errOut, code := h.topo("up", "-f", file)
		name := filepath.Base(file)
		if name == "topo.yaml" {
			name = filepath.Base(filepath.Dir(file))
		}
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", name, code)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		for _, l := range lines {
			m := posRE.FindStringSubmatch(l)
			// An empty file, or one too big to read, has no line to
			// point at.
			whole := (name == "empty.yaml" || name == "huge") && strings.HasPrefix(l, "topo: "+file+": ")
			if (m == nil || m[2] != file) && !whole {
				t.Errorf("%s: error line without FILE:LINE:COL: %q", name, l)
			}
		}
		t.Logf("%-36s %s", name, strings.Replace(strings.TrimPrefix(lines[0], "topo: "), filepath.Dir(file)+"/", "", 1))
		if after := h.snapshot(); after != before {
			t.Fatalf("%s: up changed the kernel (-before +after):\n%s", name, cmp.Diff(before, after))
		}
	}
}

// settledSnapshot is snapshot once IPv6 duplicate address detection on new
// links is over, so that its "tentative" flags do not change under a
// comparison.
func (h *host) settledSnapshot() string {
	h.t.Helper()
	h.mustSh(`for i in $(seq 300); do ip -o addr | grep -q tentative || exit 0; sleep 0.05; done; echo "addresses still tentative"; exit 1`)
	return h.snapshot()
}

// TestNeighboursSurvive surrounds a project with foreign namespaces,
// bridges, veths and iptables rules, some named like topo's, and shows that
// up, a rolled-back up, a killed up and its recovery, and down leave every
// one of them byte for byte as it was.
func TestNeighboursSurvive(t *testing.T) {
	h := newHost(t)
	h.mustSh(`set -e
ip netns add three-a-x; ip netns add three-ab; ip netns add three; ip netns add other
ip -n three-ab link set lo up
ip link add br-0000 type bridge; ip link set br-0000 up; ip addr add 192.0.2.1/24 dev br-0000
ip link add br-3f2a0000 type bridge; ip link set br-3f2a0000 alias "topo:three-x:net:lan"
ip link add veth0000 type veth peer name eth0 netns three-a-x; ip link set veth0000 master br-0000 up
ip link add vethtopo type veth peer name vethtopo1; ip link set vethtopo alias "topo:threee:ep:z/lan"; ip link set vethtopo1 alias "topo:three"
ip -n three-a-x addr add 192.0.2.2/24 dev eth0; ip -n three-a-x link set eth0 up
ip route add 198.18.0.0/15 via 192.0.2.254
iptables -N TOPO-NEIGHBOUR; iptables -A TOPO-NEIGHBOUR -s 203.0.113.0/24 -j DROP
iptables -A FORWARD -i br-0000 -j TOPO-NEIGHBOUR
iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE -m comment --comment "topo:three:like"
`)
	before := h.settledSnapshot()
	file := example("three")
	check := func(when string) {
		t.Helper()
		// br-3f2a0000 carries the mark of a project three-x, which may need
		// forwarding: down keeps the record of it for that project's down.
		after := strings.Replace(h.settledSnapshot(), forwardRecord+"\n", "", 1)
		if after != before {
			t.Fatalf("%s: the neighbours changed (-before +after):\n%s", when, cmp.Diff(before, after))
		}
	}
	// Up and down.
	h.mustTopo("up", "-f", file)
	h.mustSh("ip netns exec three-a ping -c1 -w10 172.30.0.3")
	h.mustTopo("down", "-f", file)
	check("up, down")
	// A failure at each of a few steps, rolled back.
	for _, at := range []string{"1", "5", "9", "14"} {
		cmd := h.Command(topoBin, "up", "-f", file)
		cmd.Env = append(os.Environ(), "TOPO_FAULT_AT="+at)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "the kernel is as it was") {
			t.Fatalf("up with a fault at %s: %v\n%s", at, err, out)
		}
		check("rollback of a fault at step " + at)
	}
	// Killed in the middle, recovered by up, then down.
	for _, at := range []string{"3", "7", "13"} {
		cmd := h.Command(topoBin, "up", "-f", file)
		cmd.Env = append(os.Environ(), "TOPO_CRASH_AT="+at)
		if err := cmd.Run(); err == nil {
			t.Fatalf("up with TOPO_CRASH_AT=%s was not killed", at)
		}
		_, errOut, code := h.topo("up", "-f", file)
		if code != 0 || !strings.Contains(errOut, "undoing it first") {
			t.Fatalf("up after a crash at %s: exit %d\n%s", at, code, errOut)
		}
		h.mustTopo("down", "-f", file)
		check("crash at step " + at + ", recovery, down")
	}
	// Killed, then recovered by down alone.
	cmd := h.Command(topoBin, "up", "-f", file)
	cmd.Env = append(os.Environ(), "TOPO_CRASH_AT=10")
	cmd.Run()
	h.mustTopo("down", "-p", "three")
	check("crash, down -p")
}
