// Package hosts simulates several machines for multi-host tests and the
// bench program, inside a sandbox (package sandbox): each host is a
// network and mount namespace of its own, with its own /run (so its own
// /run/netns, /run/topo and xtables lock), /etc/netns and /sys, whose
// eth0 is a port of one underlay bridge of the sandbox and carries the
// host's underlay address (IPv4, or IPv6 without duplicate address
// detection, usable at once). Commands run on a host through nsenter, the
// real topo binary among them; an ssh stand-in (SSH) runs a remote
// command on a host by its name, as `ssh HOST CMD` would, and Ping sends
// echo requests from many of a host's namespaces at once. Nothing here
// touches the machine it runs on: every namespace is made inside the
// sandbox, and ends with it.
//
// What the kernel keeps once for all namespaces stays the machine's: its
// neighbour (ARP) table and that table's limits above all
// (net.ipv4.neigh.default.gc_thresh1-3, which every namespace shows but
// which change the one table), so the hosts never set them, and the
// containers of all hosts share the machine's table (see README's
// overlay section).
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

// Runner runs commands on the machine the hosts are made on: a test's
// sandbox (*sandbox.Host), or, in a program that is its own sandbox
// (sandbox.Enter), Local.
type Runner interface {
	Command(name string, args ...string) *exec.Cmd
}

// Local runs commands in the caller's own namespaces.
type Local struct{}

// Command is exec.Command.
func (Local) Command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// World is the hosts of one test or program, in its sandbox.
type World struct {
	// t is the test of New, nil for Start: what fails on it.
	t     testing.TB
	r     Runner
	hosts map[string]*Host
	// order is the hosts' names as given.
	order []string
	// dir holds each host's init PID, for the ssh stand-in.
	dir string
	// inits are the hosts' init processes, which Close ends.
	inits []hostInit
}

// hostInit is a host's init: the command that started it, and its PID
// in the sandbox.
type hostInit struct {
	cmd *exec.Cmd
	pid int
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
// any part fails; the hosts end with the test.
func New(t testing.TB, sb *sandbox.Host, addrs ...string) *World {
	t.Helper()
	w, err := Start(sb, t.TempDir(), addrs...)
	if w != nil {
		t.Cleanup(w.Close)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.t = t
	return w
}

// Start is New for a program: it makes the hosts with r, keeps its
// files in dir (which must exist), and returns an error if any part
// fails. Close ends the hosts, also after an error.
func Start(r Runner, dir string, addrs ...string) (*World, error) {
	w := &World{r: r, hosts: map[string]*Host{}, dir: dir}
	if err := w.run(r, "ip", "link", "add", Underlay, "type", "bridge"); err != nil {
		return w, err
	}
	if err := w.run(r, "ip", "link", "set", Underlay, "up"); err != nil {
		return w, err
	}
	for i, spec := range addrs {
		name, a, ok := strings.Cut(spec, "=")
		p, err := netip.ParsePrefix(a)
		if !ok || err != nil {
			return w, fmt.Errorf("hosts: %q: want NAME=ADDR/BITS", spec)
		}
		h := &Host{Name: name, Addr: p, w: w}
		if err := h.start(); err != nil {
			return w, err
		}
		port := fmt.Sprintf("u%d-%s", i, name)
		if len(port) > 15 {
			port = port[:15]
		}
		pid := strconv.Itoa(h.pid)
		for _, argv := range [][]string{
			{"ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", pid},
			{"ip", "link", "set", port, "master", Underlay, "up"},
		} {
			if err := w.run(r, argv[0], argv[1:]...); err != nil {
				return w, err
			}
		}
		add := []string{"ip", "addr", "add", p.String(), "dev", "eth0"}
		if p.Addr().Is6() {
			// Usable at once: not tentative while the other hosts'
			// first VXLAN packets are sent to it.
			add = append(add, "nodad")
		}
		for _, argv := range [][]string{add, {"ip", "link", "set", "eth0", "up"}} {
			if err := w.run(h, argv[0], argv[1:]...); err != nil {
				return w, fmt.Errorf("host %s: %w", name, err)
			}
		}
		for _, key := range []string{name, p.Addr().String()} {
			if err := os.WriteFile(filepath.Join(w.dir, key+".pid"), []byte(pid+"\n"), 0o644); err != nil {
				return w, err
			}
		}
		w.hosts[name] = h
		w.order = append(w.order, name)
	}
	return w, nil
}

// Close ends every host's init, and with it what runs on the host
// (nsenter, its parent here, then ends).
func (w *World) Close() {
	for _, i := range w.inits {
		// The init, by its PID in the sandbox.
		_ = w.r.Command("kill", "-9", strconv.Itoa(i.pid)).Run()
		_ = i.cmd.Wait()
	}
	w.inits = nil
}

// run runs name with args with r, and says what failed.
func (w *World) run(r Runner, name string, args ...string) error {
	if out, err := r.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// fail fails the test of New; in a program it panics, for a mistake of
// the program's own (such as a host that is not in the world).
func (w *World) fail(err error) {
	if w.t == nil {
		panic(err)
	}
	w.t.Helper()
	w.t.Fatal(err)
}

// initScript is the shell of a host's init: its private mounts and
// sysctls, then its PID on stdout, then it holds the namespaces.
func initScript() string {
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
func (h *Host) start() error {
	cmd := h.w.r.Command("unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", initScript())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_ = cmd.Wait()
		return fmt.Errorf("host %s: setup failed: %s", h.Name, strings.TrimSpace(stderr.String()))
	}
	h.pid = pid
	h.w.inits = append(h.w.inits, hostInit{cmd, pid})
	return nil
}

// Host returns the host called name; it fails the test if there is none.
func (w *World) Host(name string) *Host {
	h := w.hosts[name]
	if h == nil {
		w.fail(fmt.Errorf("hosts: no host %q", name))
	}
	return h
}

// Hosts are the world's hosts, in the order given.
func (w *World) Hosts() []*Host {
	out := make([]*Host, len(w.order))
	for i, name := range w.order {
		out[i] = w.hosts[name]
	}
	return out
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
	return h.w.r.Command("nsenter", append(append(ns, "--", name), args...)...)
}

// SSH writes an ssh stand-in into a folder of the world and returns the folder,
// for the front of PATH: `ssh [OPTIONS] HOST COMMAND...`, HOST a host's
// name or underlay address, runs COMMAND, its words joined as ssh joins
// them, with sh on that host, standard input and output passed through,
// and exits with its status (255 when there is no such host, as ssh when
// it cannot connect). SSHEnv adds to one host's environment.
func (w *World) SSH() string {
	dir := filepath.Join(w.dir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.fail(err)
	}
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
		w.fail(err)
	}
	return dir
}

// SSHEnv sets variables (NAME=VALUE, no blanks) in the environment of
// what the ssh stand-in runs on host name.
func (w *World) SSHEnv(name string, env ...string) {
	h := w.Host(name)
	for _, key := range []string{name, h.Addr.Addr().String()} {
		if err := os.WriteFile(filepath.Join(w.dir, key+".env"), []byte(strings.Join(env, " ")+"\n"), 0o644); err != nil {
			w.fail(err)
		}
	}
}
