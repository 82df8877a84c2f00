// Package hosts simulates several machines for multi-host tests, inside
// one test's sandbox (package sandbox): each host is a network and mount
// namespace of its own, with its own /run (so its own /run/netns,
// /run/topo and xtables lock), /etc/netns and /sys, whose eth0 is a port
// of one underlay bridge of the sandbox and carries the host's underlay
// address. Commands run on a host through nsenter, the real topo binary
// among them; an ssh stand-in (SSH) runs a remote command on a host by
// its name, as `ssh HOST CMD` would. Nothing here touches the machine the
// test runs on: every namespace is made inside the sandbox, and ends with
// it.
package hosts

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/sandbox"
)

// Underlay is the sandbox's bridge that joins the hosts.
const Underlay = "underlay"

// World is the hosts of one test, in its sandbox.
type World struct {
	t     testing.TB
	sb    *sandbox.Host
	hosts map[string]*Host
	// dir holds each host's init PID, for the ssh stand-in.
	dir string
}

// Host is one simulated machine.
type Host struct {
	Name string
	// Addr is its underlay address, on its eth0.
	Addr netip.Prefix
	w    *World
	// pid is its init, as the sandbox's PID namespace numbers it.
	pid int
}

// New makes, in sb, the underlay bridge and one host per entry of addrs
// (NAME=ADDR/BITS, in order), each with lo and eth0 up. It fails t if
// any part fails; the hosts end with the sandbox.
func New(t testing.TB, sb *sandbox.Host, addrs ...string) *World {
	t.Helper()
	w := &World{t: t, sb: sb, hosts: map[string]*Host{}, dir: t.TempDir()}
	sb.Run(t, "ip", "link", "add", Underlay, "type", "bridge")
	sb.Run(t, "ip", "link", "set", Underlay, "up")
	for i, spec := range addrs {
		name, a, ok := strings.Cut(spec, "=")
		p, err := netip.ParsePrefix(a)
		if !ok || err != nil {
			t.Fatalf("hosts: %q: want NAME=ADDR/BITS", spec)
		}
		h := &Host{Name: name, Addr: p, w: w}
		h.start(t)
		port := fmt.Sprintf("u%d-%s", i, name)
		if len(port) > 15 {
			port = port[:15]
		}
		pid := strconv.Itoa(h.pid)
		sb.Run(t, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", pid)
		sb.Run(t, "ip", "link", "set", port, "master", Underlay, "up")
		h.run(t, "ip", "addr", "add", p.String(), "dev", "eth0")
		h.run(t, "ip", "link", "set", "eth0", "up")
		for _, key := range []string{name, p.Addr().String()} {
			if err := os.WriteFile(filepath.Join(w.dir, key+".pid"), []byte(pid+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		w.hosts[name] = h
	}
	return w
}

// hostInit is the shell of a host's init: its private mounts and
// sysctls, then its PID on stdout, then it holds the namespaces.
func hostInit() string {
	return `set -e
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
mkdir /run/netns
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /etc/netns
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
` + sandbox.SysctlScript() + `ip link set lo up
echo $$
exec sleep infinity
`
}

// start runs the host's init in new network and mount namespaces of the
// sandbox (its mounts private from the sandbox's) and waits for its PID.
func (h *Host) start(t testing.TB) {
	t.Helper()
	cmd := h.w.sb.Command("unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", hostInit())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("host %s: %v", h.Name, err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_ = cmd.Wait()
		t.Fatalf("host %s: setup failed: %s", h.Name, strings.TrimSpace(stderr.String()))
	}
	h.pid = pid
	t.Cleanup(func() {
		// The init, by its PID in the sandbox; nsenter, its parent
		// here, then ends.
		_ = h.w.sb.Command("kill", "-9", strconv.Itoa(pid)).Run()
		_ = cmd.Wait()
	})
}

// Host returns the host called name; it fails the test if there is none.
func (w *World) Host(name string) *Host {
	h := w.hosts[name]
	if h == nil {
		w.t.Fatalf("hosts: no host %q", name)
	}
	return h
}

// Command returns a command that runs name with args on the host: in its
// network and mount namespaces (and the sandbox's PID namespace), in the
// caller's working directory, with the caller's environment.
//
// Equivalent to: `nsenter --target SANDBOX --net --mount --pid -- nsenter --target HOST --net --mount --wd=$PWD -- NAME ARGS...`
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	ns := []string{"--target", strconv.Itoa(h.pid), "--net", "--mount"}
	if wd, err := os.Getwd(); err == nil {
		ns = append(ns, "--wd="+wd)
	}
	return h.w.sb.Command("nsenter", append(append(ns, "--", name), args...)...)
}

func (h *Host) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := h.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("host %s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, out)
	}
}

// SSH writes an ssh stand-in into a fresh folder and returns the folder,
// for the front of PATH: `ssh [OPTIONS] HOST COMMAND...`, HOST a host's
// name or underlay address, runs COMMAND, its words joined as ssh joins
// them, with sh on that host, standard input and output passed through,
// and exits with its status (255 when there is no such host, as ssh when
// it cannot connect). SSHEnv adds to one host's environment.
func (w *World) SSH() string {
	dir := w.t.TempDir()
	script := `#!/bin/sh
# ssh stand-in of a multi-host test (internal/hosts).
while [ $# -gt 0 ]; do
	case "$1" in
	-[opliFJ]) shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
dir=` + w.dir + `
host=$1
shift
pid=$(cat "$dir/$host.pid" 2>/dev/null) || { echo "ssh: Could not resolve hostname $host" >&2; exit 255; }
envs=$(cat "$dir/$host.env" 2>/dev/null)
exec nsenter --target "$pid" --net --mount --wd=/ -- env $envs sh -c "$*"
`
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(script), 0o755); err != nil {
		w.t.Fatal(err)
	}
	return dir
}

// SSHEnv sets variables (NAME=VALUE, no blanks) in the environment of
// what the ssh stand-in runs on host name.
func (w *World) SSHEnv(name string, env ...string) {
	h := w.Host(name)
	for _, key := range []string{name, h.Addr.Addr().String()} {
		if err := os.WriteFile(filepath.Join(w.dir, key+".env"), []byte(strings.Join(env, " ")+"\n"), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
}
