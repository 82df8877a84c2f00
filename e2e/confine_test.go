package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// logOf waits until the log of a container's command holds "DONE" (the
// commands of these tests print it when they have reported) and returns
// the log.
func (h *host) logOf(file, container string) string {
	h.t.Helper()
	var log string
	h.waitFor(container+"'s command to report", func() bool {
		log, _, _ = h.topo("logs", "--file", file, container)
		return strings.Contains(log, "DONE")
	})
	return log
}

// procsMatching lists the sandbox's live processes whose arguments match re.
func (h *host) procsMatching(re string) []string {
	h.t.Helper()
	var out []string
	for _, l := range strings.Split(h.procTable(), "\n") {
		if regexp.MustCompile(re).MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// TestDownEndsEveryDescendant: a command's children end with it, whether
// they left its session (a daemon's setsid) or outlived it (a leader that
// exited after starting them). Before commands ran in a PID namespace of
// their own, down signalled the leader's process group only, and nothing
// when the leader had exited: both kinds of children ran on.
func TestDownEndsEveryDescendant(t *testing.T) {
	h := newHost(t)
	h.mustSh("rm -f /run/kids-go")
	file := writeFile(t, "kids", `name: kids
containers:
  lead: {command: [sh, -c, "setsid sleep 4242 & sleep 4243 & while [ ! -e /run/kids-go ]; do sleep 0.05; done"]}
  stay: {command: [sh, -c, "setsid sleep 4244 & exec sleep 4245"]}
`)
	h.mustTopo("up", "-f", file)
	h.waitFor("every child to run", func() bool { return len(h.procsMatching(`sleep 424[2-5]$`)) == 4 })
	// lead's leader ends; its children must not outlive it, as in Docker,
	// where a container stops with its main process.
	lead := h.pidOf("kids", "lead")
	h.mustSh("touch /run/kids-go")
	h.waitFor("lead's leader to end", func() bool { return !h.alive(lead) })
	h.waitFor("lead's children to end with it", func() bool { return len(h.procsMatching(`sleep 424[23]$`)) == 0 })
	h.mustTopo("down", "-f", file)
	if left := h.procsMatching(`sleep 424[2-5]$`); len(left) > 0 {
		t.Errorf("processes of the project's commands run after down:\n%s", strings.Join(left, "\n"))
	}
	h.mustSh("rm -f /run/kids-go")
	assertClean(t, h, "kids")
}

// TestCommandCannotReachAnotherProject is the attack of issue 16: a
// command of one project enters the namespace of another project's
// container (by its name under /run/netns, by a process's /proc/PID/ns)
// and fetches from its server, or plants links in other namespaces with
// its CAP_NET_ADMIN. Each attempt must fail: a command has no
// CAP_SYS_ADMIN (setns refuses it, even into its own namespace), runs in
// a PID namespace of its own (no other process is there to name), and
// sees no namespace files.
func TestCommandCannotReachAnotherProject(t *testing.T) {
	need(t, "nsenter", "curl", "python3")
	h := newHost(t)
	victim := writeFile(t, "victim", `name: victim
containers:
  srv: {command: [python3, -m, http.server, "8000"]}
`)
	h.mustTopo("up", "-f", victim)
	h.waitFor("the victim's server", func() bool { return h.httpStatus("victim-srv", "http://127.0.0.1:8000/") == "200" })
	attack := writeFile(t, "attack", `name: attack
containers:
  x:
    command:
      - sh
      - -c
      - |
        echo "by name: $$(nsenter --net=/run/netns/victim-srv curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/ 2>&1)"
        for p in $$(pgrep -f '^python3 -m http.server 8000'); do
          echo "by pid $$p: $$(nsenter --net=/proc/$$p/ns/net curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/ 2>&1)"
        done
        echo "servers seen: $$(pgrep -c -f '^python3 -m http.server 8000')"
        nsenter --net=/proc/self/ns/net true 2>/dev/null && echo "setns: allowed" || echo "setns: refused"
        ip link add tv0 type veth peer name tv1 netns 1 2>&1 && echo "veth into pid 1's: made"
        ip link add tv2 type veth peer name tv3 netns victim-srv 2>&1 && echo "veth into victim-srv: made"
        echo DONE
        exec sleep 1000
`)
	h.mustTopo("up", "-f", attack)
	log := h.logOf(attack, "x")
	if strings.Contains(log, "200") {
		t.Errorf("a command of project attack reached project victim's server:\n%s", log)
	}
	if !strings.Contains(log, "setns: refused") {
		t.Errorf("setns from a command was not refused:\n%s", log)
	}
	if !strings.Contains(log, "servers seen: 0\n") {
		t.Errorf("a command sees the processes of other projects:\n%s", log)
	}
	for ns, link := range map[string]string{"": "tv1", "victim-srv": "tv3"} {
		for _, l := range h.links(ns) {
			if l.Name == link {
				t.Errorf("a command of project attack made link %s in namespace %q", link, ns)
			}
		}
	}
	if got := h.httpStatus("victim-srv", "http://127.0.0.1:8000/"); got != "200" {
		t.Errorf("victim's server after the attack: %q", got)
	}
	h.mustTopo("down", "-f", attack)
	h.mustTopo("down", "-f", victim)
	assertClean(t, h, "attack")
	assertClean(t, h, "victim")
}

// Capabilities by number (linux/capability.h), written out here rather
// than taken from topo, so that the test checks topo against the kernel's
// numbering.
const (
	capChown, capDacOverride, capFowner, capFsetid, capKill = 0, 1, 3, 4, 5
	capSetgid, capSetuid, capSetpcap, capNetBindService     = 6, 7, 8, 10
	capNetAdmin, capNetRaw, capSysChroot, capSysTime        = 12, 13, 18, 25
	capMknod, capAuditWrite, capSetfcap                     = 27, 29, 31
)

func capMask(caps ...int) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m&topoBounding)
}

// topoBounding is the bounding set topo runs with in the sandbox, which
// the machine's may narrow: a command never has more.
var topoBounding uint64

// dockerDefault is moby's default capability set (oci/caps/defaults.go).
var dockerDefault = []int{capChown, capDacOverride, capFsetid, capFowner, capMknod, capNetRaw, capSetgid, capSetuid,
	capSetfcap, capSetpcap, capNetBindService, capSysChroot, capKill, capAuditWrite}

// TestCommandPrivileges: each command runs with Docker's default
// capabilities plus CAP_NET_ADMIN (not for network_mode: host, whose
// namespace is the host's), none inheritable or ambient, with
// no_new_privs as root; user:, cap_add, cap_drop and privileged change
// that as in Compose. The environment is clean (topo's own does not
// leak), and logs are root's alone.
func TestCommandPrivileges(t *testing.T) {
	h := newHost(t)
	// Each reports its privileges and environment, and tries what a
	// router does in its own namespace: an address, forwarding.
	report := `[sh, -c, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; echo uid=$$(id -u) gid=$$(id -g) groups=$$(id -G); env | sort; ip addr add 192.0.2.1/32 dev lo 2>/dev/null && echo addr-ok; sysctl -qw net.ipv4.ip_forward=1 2>/dev/null && echo fwd-ok; echo DONE; exec sleep 1000"]`
	file := writeFile(t, "priv", fmt.Sprintf(`name: priv
containers:
  def: {network_mode: none, command: %[1]s}
  nobody: {network_mode: none, user: nobody, command: %[1]s}
  num: {network_mode: none, user: "4321:4322", command: %[1]s}
  tweak: {network_mode: none, cap_add: [sys_time, CAP_NET_ADMIN], cap_drop: [NET_RAW, cap_chown], command: %[1]s}
  only: {network_mode: none, cap_drop: [ALL], cap_add: [NET_ADMIN], command: %[1]s}
  all: {network_mode: none, cap_add: [ALL], cap_drop: [MKNOD], command: %[1]s}
  full: {network_mode: none, privileged: true, command: %[1]s}
  hostmode: {network_mode: host, command: %[1]s}
`, report))
	_, errOut, code := h.topoEnv([]string{"TOPO_TEST_SECRET=leaked"}, "up", "-f", file)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, errOut)
	}
	last, err := strconv.Atoi(strings.TrimSpace(h.mustSh("cat /proc/sys/kernel/cap_last_cap")))
	if err != nil {
		t.Fatal(err)
	}
	bnd := strings.TrimSpace(h.mustSh("sed -n 's/^CapBnd:\\t//p' /proc/self/status"))
	if topoBounding, err = strconv.ParseUint(bnd, 16, 64); err != nil {
		t.Fatalf("the sandbox's bounding set %q: %v", bnd, err)
	}
	var allCaps []int
	for c := 0; c <= last; c++ {
		allCaps = append(allCaps, c)
	}
	without := func(set []int, drop ...int) []int {
		var out []int
		for _, c := range set {
			if !containsInt(drop, c) {
				out = append(out, c)
			}
		}
		return out
	}
	def := append(append([]int{}, dockerDefault...), capNetAdmin)
	none := capMask()
	for _, c := range []struct {
		name                string
		bnd, eff            string
		nnp                 string
		uid, gid, home      string
		notInEnv, wantInEnv []string
	}{
		{name: "def", bnd: capMask(def...), eff: capMask(def...), nnp: "1", uid: "0", gid: "0", home: "/root"},
		{name: "nobody", bnd: capMask(def...), eff: none, nnp: "0", uid: "65534", gid: "65534", home: "/nonexistent"},
		{name: "num", bnd: capMask(def...), eff: none, nnp: "0", uid: "4321", gid: "4322", home: "/"},
		{name: "tweak", bnd: capMask(append(without(def, capNetRaw, capChown), capSysTime)...), eff: capMask(append(without(def, capNetRaw, capChown), capSysTime)...), nnp: "1", uid: "0", gid: "0", home: "/root"},
		{name: "only", bnd: capMask(capNetAdmin), eff: capMask(capNetAdmin), nnp: "1", uid: "0", gid: "0", home: "/root"},
		{name: "all", bnd: capMask(without(allCaps, capMknod)...), eff: capMask(without(allCaps, capMknod)...), nnp: "1", uid: "0", gid: "0", home: "/root"},
		{name: "full", bnd: capMask(allCaps...), eff: capMask(allCaps...), nnp: "0", uid: "0", gid: "0", home: "/root"},
		{name: "hostmode", bnd: capMask(dockerDefault...), eff: capMask(dockerDefault...), nnp: "1", uid: "0", gid: "0", home: "/root"},
	} {
		log := h.logOf(file, c.name)
		for _, want := range []string{
			"CapInh:\t" + none, "CapAmb:\t" + none, "CapBnd:\t" + c.bnd, "CapPrm:\t" + c.eff, "CapEff:\t" + c.eff,
			"NoNewPrivs:\t" + c.nnp, "uid=" + c.uid + " gid=" + c.gid + " ",
			"\nHOME=" + c.home + "\n", "\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", "\nTERM=dumb\n",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("%s: its log lacks %q:\n%s", c.name, want, log)
			}
		}
		router := containsCap(c.eff, capNetAdmin)
		if got := strings.Contains(log, "addr-ok\nfwd-ok\n"); got != router {
			t.Errorf("%s: configured its namespace: %v, want %v (CAP_NET_ADMIN in effect):\n%s", c.name, got, router, log)
		}
		if strings.Contains(log, "TOPO_TEST_SECRET") {
			t.Errorf("%s: topo's environment leaked into the command's:\n%s", c.name, log)
		}
		if mode := strings.TrimSpace(h.mustSh("stat -c %a /run/topo/priv/containers/" + c.name + ".log")); mode != "600" {
			t.Errorf("%s: log mode %s, want 600", c.name, mode)
		}
	}
	// What the containers did to their namespaces stayed there (they have
	// no network, so topo leaves forwarding off).
	if got := h.forwarding(); got != "0" {
		t.Errorf("the sandbox's ip_forward is %s, want 0", got)
	}
	for _, l := range h.links("") {
		if l.Name == "lo" && strings.Contains(strings.Join(l.ipv4(), " "), "192.0.2.1") {
			t.Errorf("an address a command added is on the sandbox's lo: %v", l.ipv4())
		}
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "priv")
}

// containsCap reports whether a /proc status mask holds capability c.
func containsCap(mask string, c int) bool {
	m, err := strconv.ParseUint(mask, 16, 64)
	return err == nil && m&(1<<c) != 0
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestCommandUserChangeRestarts: a changed user:, cap_add or privileged
// is a changed command: plan shows the restart and up makes it.
func TestCommandUserChangeRestarts(t *testing.T) {
	h := newHost(t)
	src := "name: who\ncontainers:\n  a: {command: [sleep, \"1000\"]}\n"
	file := writeFile(t, "who", src)
	h.mustTopo("up", "-f", file)
	pid := h.pidOf("who", "a")
	for _, change := range []string{"user: nobody, ", "user: nobody, cap_add: [SYS_TIME], ", "privileged: true, "} {
		if err := os.WriteFile(file, []byte(strings.Replace(src, "{command", "{"+change+"command", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
		if code != 2 || len(stepLines(out)) != 2 {
			t.Errorf("plan after %q: exit %d\n%s", change, code, out)
		}
		h.mustTopo("up", "-f", file)
		if h.alive(pid) {
			t.Errorf("after %q: the old process %d still runs", change, pid)
		}
		pid = h.pidOf("who", "a")
		if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
			t.Errorf("plan after up with %q: exit %d", change, code)
		}
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "who")
}

// TestUnknownUserChangesNothing: a user the host does not have stops plan
// and up at its line, before the first step.
func TestUnknownUserChangesNothing(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "nouser", "name: nouser\ncontainers:\n  a:\n    user: no-such-user-topo\n    command: [sleep, \"1000\"]\n")
	before := h.snapshot()
	for _, verb := range []string{"plan", "up"} {
		_, errOut, code := h.topo(verb, "-f", file)
		if code != 1 || !strings.Contains(errOut, file+":4:11: container a: user \"no-such-user-topo\": no such user in the host's /etc/passwd") {
			t.Errorf("%s: exit %d\n%s", verb, code, errOut)
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("the refused up changed the sandbox:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
