package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A project of one container with a command, on a network that reaches
// out (so that up records ip_forward and runs the resolver).
func stateProject(name, subnet string) string {
	return "name: " + name + "\nnetworks:\n  lan: {subnet: " + subnet + "}\ncontainers:\n  web: {networks: [lan], command: [sleep, \"3600\"]}\n"
}

// withoutLocks is a snapshot without the locks: a refused up leaves the
// locks it took, as any failed up whose project folder holds something.
func withoutLocks(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasSuffix(l, "/lock") && !strings.HasSuffix(l, "/host.lock") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestLinksAreNeverFollowed plants a symbolic link, in turn, at each file
// topo writes or removes under /run/topo and /etc/netns, and at the
// project's folder: up must refuse, naming the link, and leave the file
// the link points to as it was; the kernel is as before, and no resolver
// is left running.
func TestLinksAreNeverFollowed(t *testing.T) {
	for _, c := range []struct {
		name, link string
		dir        bool // the link points to a folder
	}{
		{"lock", "/run/topo/ln/lock", false},
		{"journal", "/run/topo/ln/journal", false},
		{"log", "/run/topo/ln/containers/web.log", false},
		{"pid tmp", "/run/topo/ln/containers/web.pid.tmp", false},
		{"records tmp", "/run/topo/ln/.dns.json.tmp", false},
		{"record tmp", "/run/topo/net.ipv4.ip_forward.before.tmp", false},
		{"netns folder", "/etc/netns/ln-web", true},
		{"project folder", "/run/topo/ln", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t)
			h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
			file := writeFile(t, "ln", stateProject("ln", "10.86.1.0/24"))
			target := "/run/outside/file"
			h.mustSh("mkdir -p /run/outside/dir && echo precious > " + target + " && echo precious > /run/outside/dir/hosts")
			if c.dir {
				target = "/run/outside/dir"
			}
			h.mustSh("mkdir -p $(dirname " + c.link + ") && ln -s " + target + " " + c.link)
			before := withoutLocks(h.snapshot())
			outside := h.mustSh("find /run/outside -printf '%p %s %T@\\n' | sort; cat /run/outside/file /run/outside/dir/hosts")
			_, errOut, code := h.topo("up", "-f", file)
			if code == 0 || !strings.Contains(errOut, c.link+" is a symbolic link") {
				t.Errorf("up with a link at %s: exit %d, want a refusal naming it\n%s", c.link, code, errOut)
			}
			if got := h.mustSh("find /run/outside -printf '%p %s %T@\\n' | sort; cat /run/outside/file /run/outside/dir/hosts"); got != outside {
				t.Errorf("up touched what the link points to:\nbefore:\n%s\nafter:\n%s", outside, got)
			}
			if after := withoutLocks(h.snapshot()); after != before {
				t.Errorf("up left the kernel or the files changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			_, errOut, code = h.topo("down", "-f", file)
			if c.name == "project folder" && (code == 0 || !strings.Contains(errOut, c.link+" is a symbolic link")) {
				t.Errorf("down with the project folder a link: exit %d, want a refusal naming it\n%s", code, errOut)
			}
			if procs := h.procsMatching("resolver serve"); len(procs) > 0 {
				t.Errorf("a resolver runs after down: %v", procs)
			}
			if got := h.mustSh("find /run/outside -printf '%p %s %T@\\n' | sort; cat /run/outside/file /run/outside/dir/hosts"); got != outside {
				t.Errorf("down touched what the link points to:\nbefore:\n%s\nafter:\n%s", outside, got)
			}
		})
	}
}

// TestLinkAtNetnsFolderOnDown: a project's /etc/netns folder replaced by a
// link after up: down refuses, naming it, and deletes nothing the link
// points to.
func TestLinkAtNetnsFolderOnDown(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "lnd", stateProject("lnd", "10.86.2.0/24"))
	h.mustTopo("up", "-f", file)
	h.mustSh("mkdir -p /run/outside && mv /etc/netns/lnd-web /run/outside/dir && ln -s /run/outside/dir /etc/netns/lnd-web")
	outside := h.mustSh("ls -l /run/outside/dir; cat /run/outside/dir/*")
	_, errOut, code := h.topo("down", "-f", file)
	if code == 0 || !strings.Contains(errOut, "/etc/netns/lnd-web is a symbolic link") {
		t.Errorf("down with a link at /etc/netns/lnd-web: exit %d, want a refusal naming it\n%s", code, errOut)
	}
	if got := h.mustSh("ls -l /run/outside/dir; cat /run/outside/dir/*"); got != outside {
		t.Errorf("down touched what the link points to:\nbefore:\n%s\nafter:\n%s", outside, got)
	}
	h.mustSh("rm /etc/netns/lnd-web && mv /run/outside/dir /etc/netns/lnd-web")
	h.mustTopo("down", "-f", file)
	if left := h.leftovers("lnd"); strings.TrimSpace(left) != "" {
		t.Errorf("down left:\n%s", left)
	}
}

// TestStateFilesAreRootsAlone: topo makes its folders 0700 and its files
// 0600 (whatever the umask), and refuses a runtime folder or file that
// another user owns or that others may write: a world-writable
// TOPO_STATE_DIR, a journal another user wrote (whose undo would run a
// command as root), a group-writable project folder.
func TestStateFilesAreRootsAlone(t *testing.T) {
	h := newHost(t)
	h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
	file := writeFile(t, "own", stateProject("own", "10.86.3.0/24"))
	h.mustSh("umask 000; " + topoBin + " up -f " + file)
	modes := h.mustSh(`find /run/topo -printf '%m %y %F %p\n' | sort -k4`)
	for _, l := range strings.Split(strings.TrimSpace(modes), "\n") {
		f := strings.Fields(l)
		want := map[string]string{"d": "700", "f": "600"}[f[1]]
		if f[2] == "nsfs" {
			// A UTS namespace's mount shows the namespace's inode,
			// 0444 as every namespace file, in a folder of 0700.
			want = "444"
		}
		if f[0] != want {
			t.Errorf("%s is mode %s, want %s", f[3], f[0], want)
		}
	}
	h.mustTopo("down", "-f", file)

	h.mustSh("mkdir -m 1777 /run/shared")
	out, ok := h.sh("TOPO_STATE_DIR=/run/shared " + topoBin + " up -f " + file)
	if ok || !strings.Contains(out, "/run/shared is owned by uid 0 with mode 1777") {
		t.Errorf("up with a world-writable TOPO_STATE_DIR: succeeded %v, want a refusal naming it\n%s", ok, out)
	}

	journal := `{"rec":"begin","format":1,"verb":"down","pid":1,"time":"2026-12-03T12:00:00Z","steps":1,"i":0}
{"rec":"start","i":0,"step":{"action":"-","op":"proc-stop","resource":"container web","argv":["sleep","1"],"log":"/run/topo/own/containers/web.log","pid_file":"/run/topo/own/containers/web.pid","undo":{"action":"+","op":"proc-start","resource":"container web","argv":["touch","/run/pwned"],"log":"/run/topo/own/containers/web.log","pid_file":"/run/topo/own/containers/web.pid"}}}
{"rec":"done","i":0}
`
	h.writeAs("/run/topo/own/journal", journal, "nobody", "644")
	_, errOut, code := h.topo("up", "-f", file)
	if code == 0 || !strings.Contains(errOut, "/run/topo/own/journal is owned by uid 65534") {
		t.Errorf("up with another user's journal: exit %d, want a refusal naming it\n%s", code, errOut)
	}
	if _, ok := h.sh("test -e /run/pwned"); ok {
		t.Errorf("the command of another user's journal ran")
	}
	h.mustSh("rm /run/topo/own/journal && chmod 0770 /run/topo/own")
	_, errOut, code = h.topo("up", "-f", file)
	if code == 0 || !strings.Contains(errOut, "/run/topo/own is owned by uid 0 with mode 0770") {
		t.Errorf("up with a group-writable project folder: exit %d, want a refusal naming it\n%s", code, errOut)
	}
}

// writeAs writes a file in the host owned by user with mode.
func (h *host) writeAs(path, content, user, mode string) {
	h.t.Helper()
	h.mustSh(fmt.Sprintf("mkdir -p $(dirname %[1]s) && cat > %[1]s <<'EOF'\n%[2]sEOF\nchown %[3]s %[1]s && chmod %[4]s %[1]s", path, content, user, mode))
}

// TestHandEditedJournal: a journal (root's, in a root folder) that names
// objects that are not the project's. Recovery must delete no foreign
// link, namespace, address or rule, write no other namespace's file, and
// run no command read back from it; then up converges and down leaves
// nothing.
func TestHandEditedJournal(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "jt", stateProject("jt", "10.86.4.0/24"))
	h.mustSh(`ip link add uplink type bridge && ip addr add 10.84.0.1/24 dev uplink && ip link set uplink up
ip netns add victim
mkdir -p /etc/netns/other-x && echo precious > /etc/netns/other-x/hosts
iptables -A FORWARD -s 10.85.0.0/16 -j ACCEPT`)
	probe := "ip -4 -o addr show uplink; ip netns list | grep -o '^victim'; cat /etc/netns/other-x/hosts; iptables -S FORWARD | grep -v topo:"
	before := h.mustSh(probe)
	journal := `{"rec":"begin","format":1,"verb":"up","pid":1,"time":"2026-12-03T12:00:00Z","steps":6,"i":0}
{"rec":"start","i":0,"step":{"action":"+","op":"addr-add","resource":"network lan","link":"uplink","addr":"10.84.0.1/24","undo":{"action":"-","op":"addr-del","resource":"network lan","link":"uplink","addr":"10.84.0.1/24"}}}
{"rec":"done","i":0}
{"rec":"start","i":1,"step":{"action":"-","op":"proc-stop","resource":"container web","argv":["sleep","1"],"log":"/run/topo/jt/containers/web.log","pid_file":"/run/topo/jt/containers/web.pid","undo":{"action":"+","op":"proc-start","resource":"container web","argv":["touch","/run/pwned"],"log":"/run/topo/jt/containers/web.log","pid_file":"/run/topo/jt/containers/web.pid"}}}
{"rec":"done","i":1}
{"rec":"start","i":2,"step":{"action":"~","op":"file-write","resource":"host","netns":"other-x","path":"/etc/netns/other-x/hosts","content":"x\n","undo":{"action":"~","op":"file-write","resource":"host","netns":"other-x","path":"/etc/netns/other-x/hosts","content":"pwned\n"}}}
{"rec":"done","i":2}
{"rec":"start","i":3,"step":{"action":"+","op":"firewall","resource":"firewall filter","table":"filter","rules":[{"op":"-A","chain":"FORWARD","spec":"-s 10.85.0.0/16 -j ACCEPT"}],"undo":{"action":"-","op":"firewall","resource":"firewall filter","table":"filter","rules":[{"op":"-D","chain":"FORWARD","spec":"-s 10.85.0.0/16 -j ACCEPT"}]}}}
{"rec":"done","i":3}
{"rec":"start","i":4,"step":{"action":"+","op":"netns-add","resource":"container web","netns":"victim","alias":"topo:jt:ns:web","undo":{"action":"-","op":"netns-del","resource":"container web","netns":"victim"}}}
{"rec":"start","i":5,"step":{"action":"+","op":"bridge-add","resource":"network lan","link":"uplink","alias":"topo:jt:net:lan","mac":"02:42:0a:00:00:01","undo":{"action":"-","op":"link-del","resource":"network lan","link":"uplink"}}}
`
	h.writeAs("/run/topo/jt/journal", journal, "root", "600")
	h.mustSh("chmod 700 /run/topo /run/topo/jt")
	_, errOut, code := h.topo("up", "-f", file)
	if code != 0 || !strings.Contains(errOut, "undoing it first") {
		t.Errorf("up after the hand-edited journal: exit %d\n%s", code, errOut)
	}
	if after := h.mustSh(probe); after != before {
		t.Errorf("recovery touched what is not the project's:\nbefore:\n%s\nafter:\n%s\n%s", before, after, errOut)
	}
	if _, ok := h.sh("test -e /run/pwned"); ok {
		t.Errorf("recovery ran a command read back from the journal\n%s", errOut)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the recovery: exit %d\n%s", code, out)
	}
	h.mustTopo("down", "-f", file)
}

// TestPidFilesNamingOthers: pid files that name live processes topo did
// not start, with their right start times: one that leads no process
// group (a down used to wait for it to "survive SIGKILL" after 10 s,
// every time) and a group leader running another command than the one
// recorded (a down used to kill it). down must signal neither, finish
// at once and remove the files.
func TestPidFilesNamingOthers(t *testing.T) {
	for _, c := range []struct {
		name, start, argv string
	}{
		{"not a group leader", `setsid sh -c 'sleep 301 & echo $! > /run/child; wait' >/dev/null 2>&1 & while ! test -s /run/child; do sleep 0.01; done; cat /run/child`, `["sleep","301"]`},
		{"another command", `setsid sleep 302 >/dev/null 2>&1 & echo $!`, `["nginx","-g","daemon off;"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t)
			pid := strings.TrimSpace(h.mustSh(c.start))
			defer h.sh("kill " + pid)
			start := strings.TrimSpace(h.mustSh("awk '{print $22}' /proc/" + pid + "/stat"))
			h.mustSh("mkdir -p -m 700 /run/topo /run/topo/pf /run/topo/pf/containers")
			h.writeAs("/run/topo/pf/containers/a.pid", `{"pid":`+pid+`,"start":`+start+`,"argv":`+c.argv+`}`+"\n", "root", "600")
			began := time.Now()
			_, errOut, code := h.topo("down", "-p", "pf")
			took := time.Since(began)
			if code != 0 {
				t.Errorf("down: exit %d after %v\n%s", code, took, errOut)
			}
			if state := h.mustSh("awk '{print $3}' /proc/" + pid + "/stat 2>/dev/null || true"); strings.TrimSpace(state) == "" || strings.HasPrefix(state, "Z") {
				t.Errorf("down signalled process %s, which topo did not start", pid)
			}
			if left := h.mustSh("find /run/topo -mindepth 1 2>/dev/null || true"); strings.TrimSpace(left) != "" {
				t.Errorf("down left:\n%s", left)
			}
			t.Logf("down took %v", took)
		})
	}
}

// TestFullRuntimeDisk: /run/topo is a tiny tmpfs. Filled but for a few
// pages, up fails when a journal record (or a file) cannot be written:
// the kernel is rolled back, and no journal is left that recovery would
// misread. Then, with the project up and the tmpfs full, down works.
func TestFullRuntimeDisk(t *testing.T) {
	h := newHost(t)
	h.mustSh("sysctl -qw net.ipv4.ip_forward=0 && mkdir -p /run/topo && mount -t tmpfs -o size=512k,mode=0700 tmpfs /run/topo")
	var src strings.Builder
	src.WriteString("name: full\nnetworks:\n  lan: {subnet: 10.86.5.0/24}\ncontainers:\n")
	for i := range 6 {
		fmt.Fprintf(&src, "  c%d: {networks: [lan], command: [sleep, \"3600\"]}\n", i)
	}
	file := writeFile(t, "full", src.String())
	fill := func(leave int) {
		h.t.Helper()
		h.mustSh(fmt.Sprintf("dd if=/dev/zero of=/run/topo/fill bs=4k 2>/dev/null; truncate -s $(( $(stat -c %%s /run/topo/fill) - %d )) /run/topo/fill", leave))
	}
	// Wherever the disk runs out (a lock's pid, the record of ip_forward,
	// the journal's first page or a later one, a pid file), up fails, is
	// rolled back, and leaves no journal behind; with enough room it
	// succeeds.
	failed := 0
	for leave := 4 << 10; ; leave += 4 << 10 {
		fill(leave)
		before := h.snapshot()
		_, errOut, code := h.topo("up", "-f", file)
		if code == 0 {
			h.mustSh("rm /run/topo/fill")
			h.mustTopo("down", "-f", file)
			break
		}
		failed++
		if !strings.Contains(errOut, "no space left on device") {
			t.Errorf("up with %d KiB free: exit %d, want it to fail for want of space\n%s", leave>>10, code, errOut)
		}
		if after := h.snapshot(); after != before {
			t.Errorf("up with %d KiB free left the kernel or the files changed:\nbefore:\n%s\nafter:\n%s\n%s", leave>>10, before, after, errOut)
		}
		if out, errOut, _ := h.topo("plan", "-f", file); strings.Contains(out+errOut, "interrupted") || strings.Contains(errOut, "journal") {
			t.Errorf("plan after the up with %d KiB free finds a journal:\n%s%s", leave>>10, out, errOut)
		}
		h.mustSh("rm /run/topo/fill")
	}
	t.Logf("up failed for want of space %d times, then succeeded", failed)
	h.mustTopo("up", "-f", file)
	fill(0)
	if _, ok := h.sh("echo x > /run/topo/probe"); ok {
		t.Fatalf("the tmpfs is not full")
	}
	_, errOut, code := h.topo("down", "-f", file)
	if code != 0 {
		t.Errorf("down on a full disk: exit %d\n%s", code, errOut)
	}
	if left := h.mustSh("ip netns list; ip -o link | grep -o 'alias topo:full:[^ ]*' || true; find /run/topo /etc/netns -mindepth 1 ! -name fill ! -name probe"); strings.TrimSpace(left) != "" {
		t.Errorf("down on a full disk left:\n%s", left)
	}
}
