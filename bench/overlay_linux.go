package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/internal/hosts"
)

// The overlay mode (-overlay GxN): G simulated hosts (package hosts:
// namespaces of the sandbox joined by an underlay bridge) with N
// containers each on one overlay network, against one host with G*N
// containers on one bridge network, the same names and addresses
// (benchtopo.Mesh). Each run times, in turn:
//
//   - one host: up, the pings, down;
//   - G hosts, one `topo up` per host, one host after another (each host
//     alone on the machine), the pings, then one `topo down` per host;
//   - G hosts with `topo up --all-hosts` from the first host (over the
//     hosts' ssh stand-in, which runs every host's up at once, here on
//     the same CPUs), the pings, `topo down --all-hosts`.
//
// The pings: every container pings the container of its index in each
// other group (G*N*(G-1) pings), one pinger per host (hosts.Ping), pingAt
// at a time over all hosts; every ping must be answered. The order of
// the three rotates from run to run.

// pingerMain runs the overlay mode's pinger, which is this program run
// again on a host (hosts.Ping), when the environment asks for it.
func pingerMain() { hosts.PingMain() }

// pingAt is how many pings are in flight at once, over all hosts.
const pingAt = 150

// pingTimeout bounds one ping, its retries included.
const pingTimeout = 30 * time.Second

const (
	meshSingle  = "one host, one bridge"
	meshEach    = "hosts, up on each"
	meshAllHost = "hosts, up --all-hosts"
)

// meshRun is one cycle of one setup: the whole up, pings and down, and
// each host's up and down where they ran one after another.
type meshRun struct {
	up, pings, down time.Duration
	// rtt is the median of the pings' round trips, slowest the
	// longest.
	rtt, slowest     time.Duration
	hostUp, hostDown []time.Duration
}

// parseMesh reads -overlay's GxN.
func parseMesh(s string) (benchtopo.Mesh, error) {
	g, n, ok := strings.Cut(s, "x")
	groups, err1 := strconv.Atoi(g)
	per, err2 := strconv.Atoi(n)
	m := benchtopo.Mesh{Project: "mesh", Groups: groups, PerGroup: per}
	if !ok || err1 != nil || err2 != nil {
		return m, fmt.Errorf("-overlay %q: want HOSTSxCONTAINERS, like 3x100", s)
	}
	if groups < 2 {
		return m, fmt.Errorf("-overlay %q: an overlay needs at least 2 hosts", s)
	}
	return m, m.Check()
}

// runOverlay times the three setups of m, o.runs times each.
func runOverlay(o *options, m benchtopo.Mesh, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "topo-bench-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	over, single := m, m
	over.Overlay = true
	files := map[bool]string{true: filepath.Join(dir, "overlay", "topo.yaml"), false: filepath.Join(dir, "single", "topo.yaml")}
	for _, mm := range []benchtopo.Mesh{over, single} {
		p := files[mm.Overlay]
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, mm.YAML(), 0o644); err != nil {
			return err
		}
	}
	var addrs []string
	for g := range m.Groups {
		addrs = append(addrs, m.Host(g)+"="+m.HostAddr(g).String())
	}
	wdir := filepath.Join(dir, "world")
	if err := os.Mkdir(wdir, 0o755); err != nil {
		return err
	}
	w, err := hosts.Start(hosts.Local{}, wdir, addrs...)
	defer w.Close()
	if err != nil {
		return err
	}
	b := &meshBench{o: o, m: m, w: w, files: files, path: w.SSH() + ":" + filepath.Dir(o.topo) + ":" + os.Getenv("PATH")}
	for _, h := range w.Hosts() {
		c, err := hostCount(h)
		if err != nil {
			return err
		}
		b.base = append(b.base, c)
	}
	setups := []string{meshSingle, meshEach, meshAllHost}
	res := map[string][]meshRun{}
	start := time.Now()
	loadBefore := loadavg()
	for r := range o.runs {
		for j := range setups {
			s := setups[(j+r)%len(setups)]
			mr, err := b.cycle(s)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", r+1, b.label(s), err)
			}
			fmt.Fprintf(stderr, "run %d/%d  %-29s up %6.3fs  pings %6.3fs (round trip median %.4fs, slowest %.3fs)  down %6.3fs\n",
				r+1, o.runs, b.label(s), mr.up.Seconds(), mr.pings.Seconds(), mr.rtt.Seconds(), mr.slowest.Seconds(), mr.down.Seconds())
			res[s] = append(res[s], mr)
		}
	}
	b.report(stdout, res, time.Since(start), loadBefore+" before, "+loadavg()+" after")
	return nil
}

type meshBench struct {
	o     *options
	m     benchtopo.Mesh
	w     *hosts.World
	files map[bool]string
	// path is PATH for up --all-hosts: the ssh stand-in, then topo.
	path string
	// base is each host's count before anything is up.
	base []kernelCount
}

func (b *meshBench) label(setup string) string {
	if setup == meshSingle {
		return fmt.Sprintf("1 host x %d, one bridge", b.m.Groups*b.m.PerGroup)
	}
	return fmt.Sprintf("%d hosts x %d, %s", b.m.Groups, b.m.PerGroup, strings.TrimPrefix(setup, "hosts, "))
}

// cycle brings the setup up, checks it, pings, brings it down and waits
// until every host is as it was.
func (b *meshBench) cycle(setup string) (meshRun, error) {
	var r meshRun
	// Before up, so that this run's namespaces count as gone only once
	// the kernel has freed them.
	slab, err := liveNamespaces()
	if err != nil {
		slab = 1 << 30 // no slabinfo: settle on links and names only
	}
	if r.up, r.hostUp, err = b.apply(setup, "up"); err != nil {
		return r, err
	}
	// Where the containers are, and how many each host has.
	on, want := b.w.Hosts(), b.m.PerGroup
	if setup == meshSingle {
		on, want = on[:1], b.m.Groups*b.m.PerGroup
	}
	for i, h := range on {
		got, err := hostCount(h)
		if err != nil {
			return r, err
		}
		if got.namespaces != b.base[i].namespaces+want {
			return r, fmt.Errorf("after up, %s has %s, want %d namespaces", h.Name, got, b.base[i].namespaces+want)
		}
	}
	if err := b.ping(setup, &r); err != nil {
		return r, err
	}
	if r.down, r.hostDown, err = b.apply(setup, "down"); err != nil {
		return r, err
	}
	return r, b.settle(slab)
}

// apply runs topo's verb, up or down, for the setup, and returns its
// time, and each host's where they ran one after another.
func (b *meshBench) apply(setup, verb string) (time.Duration, []time.Duration, error) {
	hs := b.w.Hosts()
	switch setup {
	case meshSingle:
		d, err := b.topo(hs[0], "-f", b.files[false], verb)
		return d, nil, err
	case meshAllHost:
		d, err := b.topo(hs[0], verb, "--all-hosts", "-f", b.files[true])
		return d, nil, err
	}
	var total time.Duration
	var each []time.Duration
	for _, h := range hs {
		d, err := b.topo(h, "-f", b.files[true], verb)
		if err != nil {
			return 0, nil, err
		}
		each = append(each, d)
		total += d
	}
	return total, each, nil
}

// topo runs topo on h and returns its wall time.
func (b *meshBench) topo(h *hosts.Host, args ...string) (time.Duration, error) {
	cmd := h.Command(b.o.topo, args...)
	cmd.Env = append(os.Environ(), "PATH="+b.path)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: topo %s: %w\n%s", h.Name, strings.Join(args, " "), err, out.String())
	}
	return time.Since(start), nil
}

// ping sends every container's pings of the setup, one pinger per host
// with containers, all at once.
func (b *meshBench) ping(setup string, r *meshRun) error {
	m := b.m
	byHost := make([][]hosts.Ping, m.Groups)
	for g := range m.Groups {
		for i := range m.PerGroup {
			for _, p := range m.Peers(g, i) {
				h := g
				if setup == meshSingle {
					h = 0
				}
				byHost[h] = append(byHost[h], hosts.Ping{From: m.Namespace(g, i), To: m.Addr(p[0], p[1])})
			}
		}
	}
	byHost = slices.DeleteFunc(byHost, func(ps []hosts.Ping) bool { return len(ps) == 0 })
	errs := make([]error, len(byHost))
	echoes := make([][]hosts.Echo, len(byHost))
	var wg sync.WaitGroup
	start := time.Now()
	for i, ps := range byHost {
		wg.Add(1)
		go func() {
			defer wg.Done()
			echoes[i], errs[i] = b.w.Hosts()[i].Ping(ps, pingTimeout, pingAt/len(byHost))
		}()
	}
	wg.Wait()
	r.pings = time.Since(start)
	var rtts []time.Duration
	for i, es := range echoes {
		if errs[i] != nil {
			return errs[i]
		}
		for _, e := range es {
			if e.Err != "" {
				return fmt.Errorf("ping: %s", e.Err)
			}
			rtts = append(rtts, e.RTT)
			r.slowest = max(r.slowest, e.RTT)
		}
	}
	r.rtt = median(rtts)
	return nil
}

// settle waits until every host is back to its count before up, and
// then, as cycle does, for the kernel's count of namespaces to be back to
// slab, its count before up (untimed, at most cooldownMax).
func (b *meshBench) settle(slab int) error {
	for i, h := range b.w.Hosts() {
		for deadline := time.Now().Add(b.o.timeout); ; time.Sleep(10 * time.Millisecond) {
			got, err := hostCount(h)
			if err != nil {
				return err
			}
			if got == b.base[i] {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("after down %s did not settle in %s: %s, want %s", h.Name, b.o.timeout, got, b.base[i])
			}
		}
	}
	for start := time.Now(); time.Since(start) < cooldownMax; time.Sleep(10 * time.Millisecond) {
		if n, err := liveNamespaces(); err != nil || n <= slab+namespaceSlack {
			break
		}
	}
	return nil
}

// hostCount is what host h holds: its links and named namespaces.
func hostCount(h *hosts.Host) (kernelCount, error) {
	out, err := h.Command("sh", "-c", "ls /sys/class/net | wc -l; ls /run/netns | wc -l").Output()
	if err != nil {
		return kernelCount{}, fmt.Errorf("%s: count links and namespaces: %w", h.Name, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return kernelCount{}, fmt.Errorf("%s: count links and namespaces: %q", h.Name, out)
	}
	var c kernelCount
	c.links, _ = strconv.Atoi(f[0])
	c.namespaces, _ = strconv.Atoi(f[1])
	return c, nil
}

func (b *meshBench) report(w io.Writer, res map[string][]meshRun, took time.Duration, load string) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m := b.m
	fmt.Fprintf(w, "\n%d containers, every one pinging the container of its index on each other host (%d pings, %d at a time); median of %d runs, the setups' order rotated; %d CPUs, Linux %s; load average %s; the whole run took %s.\n\n",
		m.Groups*m.PerGroup, m.Groups*m.PerGroup*(m.Groups-1), pingAt, b.o.runs, runtime.NumCPU(), strings.TrimSpace(string(kernel)), load, took.Round(time.Second))
	var hostCols []string
	for g := range m.Groups {
		hostCols = append(hostCols, m.Host(g))
	}
	fmt.Fprintf(w, "| setup | up | up of %s | pings | round trip | slowest | down | down of %s |\n", strings.Join(hostCols, ", "), strings.Join(hostCols, ", "))
	fmt.Fprintln(w, "|:--|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range []string{meshSingle, meshEach, meshAllHost} {
		rs := res[s]
		if len(rs) == 0 {
			continue
		}
		col := func(f func(meshRun) time.Duration) time.Duration {
			var ds []time.Duration
			for _, r := range rs {
				ds = append(ds, f(r))
			}
			return median(ds)
		}
		perHost := func(f func(meshRun) []time.Duration) string {
			if len(f(rs[0])) == 0 {
				return "–"
			}
			var parts []string
			for g := range m.Groups {
				parts = append(parts, fmt.Sprintf("%.3f", col(func(r meshRun) time.Duration { return f(r)[g] }).Seconds()))
			}
			return strings.Join(parts, ", ") + " s"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f ms | %s | %s | %s |\n", b.label(s),
			secs(col(func(r meshRun) time.Duration { return r.up })),
			perHost(func(r meshRun) []time.Duration { return r.hostUp }),
			secs(col(func(r meshRun) time.Duration { return r.pings })),
			float64(col(func(r meshRun) time.Duration { return r.rtt }).Microseconds())/1000,
			secs(col(func(r meshRun) time.Duration { return r.slowest })),
			secs(col(func(r meshRun) time.Duration { return r.down })),
			perHost(func(r meshRun) []time.Duration { return r.hostDown }))
	}
	fmt.Fprintf(w, "\nThe hosts are namespaces of one machine: \"up on each\" runs each host's up alone, one after another, and its up and down are the sums; up --all-hosts runs them at once over the ssh stand-in, on the same %d CPUs. \"pings\" is from the first request to the last reply, one pinger process per host; \"round trip\" is the median ping's, from its first request to its reply, \"slowest\" the longest. Down returns once the kernel has removed the links; between runs the benchmark waits, untimed, for every host to be back to its links and namespaces.\n", runtime.NumCPU())
}
