// Command bench times topo against the two ways people build the same
// network by hand: a shell script with one ip/iptables process per
// operation, and a batched script (ip -batch, one ip -n NS -batch per
// namespace, one iptables-restore). For each size N it generates a topology
// of N containers on K bridge networks, one published port and one name
// each, and in the same run, in a private sandbox (fresh network, mount and
// PID namespaces, see internal/sandbox), times every tool's up and down
// (and topo's no-op plan) several times, checks each result, and prints the
// medians as a Markdown table with ratios to the batched script and peak
// memory.
//
//	go build -o bin/topo ./cmd/topo && sudo go run ./bench -topo bin/topo
//
// With -baseline OLD it also times another topo binary (an earlier build)
// in the same run, as the tool "topo (baseline)", and adds a table of topo
// against it.
//
// It also times a kernel floor of its own (floor.go): the least work that
// leaves the kernel as topo's up leaves it, and its down, and prints topo
// against it; before timing it checks, at a small N, that the floor's
// state is topo's (floorcheck.go).
//
// With -chain N it times a routed lab instead: N routers in a chain,
// joined by point-to-point links, with static routes (see chain.go).
//
// With -overlay GxN it times G simulated hosts with N containers each on
// an overlay network, up, pings between the hosts and down, against one
// host with the G*N containers on one bridge (see overlay_linux.go).
//
// It needs root, bash, ip and iptables. It changes nothing outside its
// sandbox.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/internal/sandbox"
)

// Tools, in the order the table shows them.
const (
	toolTopo       = "topo"
	toolBaseline   = "topo (baseline)"
	toolDualStack  = "topo (dual stack)"
	toolFloor      = "kernel floor"
	toolBatched    = "batched script"
	toolPerCommand = "per-command script"
)

var allTools = []string{toolTopo, toolDualStack, toolBaseline, toolFloor, toolBatched, toolPerCommand}

type options struct {
	sizes []int
	k     int
	runs  int
	// slowRuns caps the runs of the per-command script, which takes
	// minutes at N=1000.
	slowRuns int
	topo     string
	// baseline is another topo binary timed beside topo; "" for none.
	baseline string
	// dualStack times topo on the dual-stack file too.
	dualStack bool
	tools     []string
	keep      string
	timeout   time.Duration
	// chain, when not 0, times the chain lab of that many routers
	// instead (chain.go).
	chain int
	// check is the N at which the floor's state is checked against
	// topo's before timing; 0 for no check.
	check int
	// mesh, when it has groups, times overlay hosts against one host
	// instead (overlay_linux.go).
	mesh benchtopo.Mesh
}

func main() {
	pingerMain()
	if ok, code := floorMain(os.Args[1:]); ok {
		os.Exit(code)
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	// Everything below runs inside the sandbox.
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	run := run
	switch {
	case o.chain > 0:
		run = func(o *options, stdout, stderr io.Writer) error { return runChain(o, o.chain, stdout, stderr) }
	case o.mesh.Groups > 0:
		run = func(o *options, stdout, stderr io.Writer) error { return runOverlay(o, o.mesh, stdout, stderr) }
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	sizes := fs.String("n", "100,500,1000", "comma-separated numbers of containers")
	tools := fs.String("tools", strings.Join([]string{toolTopo, toolFloor, toolBatched, toolPerCommand}, ","), "comma-separated tools to time (-baseline adds its own)")
	o := &options{}
	fs.IntVar(&o.k, "k", 4, "number of bridge networks (more where a bridge would have more containers than ports: 5 at N=5000)")
	fs.IntVar(&o.runs, "runs", 3, "runs per size and tool; the table shows medians")
	fs.IntVar(&o.slowRuns, "per-command-runs", 1, "at most this many runs of the per-command script (minutes at N=1000)")
	fs.StringVar(&o.topo, "topo", "bin/topo", "the topo binary to time")
	fs.StringVar(&o.baseline, "baseline", "", "another topo binary (an earlier build) to time beside it, in the same run")
	fs.StringVar(&o.keep, "keep", "", "write the generated files and scripts to this folder")
	fs.BoolVar(&o.dualStack, "dualstack", false, "also time topo on the same topology with every network dual stack (enable_ipv6), in the same run")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit for any one command")
	fs.IntVar(&o.chain, "chain", 0, "time a lab of this many routers in a chain (links and routes) against a batched script, instead")
	fs.IntVar(&o.check, "check", 12, "before timing, check at this N that the kernel floor leaves topo's kernel state (0: no check)")
	overlay := fs.String("overlay", "", "time HOSTSxCONTAINERS (like 3x100) on an overlay across simulated hosts, and one host with them all on a bridge, instead")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *overlay != "" {
		m, err := parseMesh(*overlay)
		if err != nil {
			return nil, err
		}
		o.mesh = m
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-n: %q is not a number", s)
		}
		if err := (benchtopo.Topology{N: n, K: benchtopo.Networks(n, o.k)}).Check(); err != nil {
			return nil, fmt.Errorf("-n %d -k %d: %w", n, o.k, err)
		}
		o.sizes = append(o.sizes, n)
	}
	for _, t := range strings.Split(*tools, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(allTools, t) || t == toolDualStack {
			return nil, fmt.Errorf("-tools: unknown tool %q; choose from %q", t, allTools)
		}
		o.tools = append(o.tools, t)
	}
	if o.baseline != "" {
		if slices.Contains(o.tools, toolBaseline) || !slices.Contains(o.tools, toolTopo) {
			return nil, errors.New("-baseline times a second topo beside topo: keep topo in -tools, and name the baseline with -baseline only")
		}
		abs, err := filepath.Abs(o.baseline)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("-baseline: %w", err)
		}
		o.baseline = abs
		o.tools = append(o.tools, toolBaseline)
	} else if slices.Contains(o.tools, toolBaseline) {
		return nil, errors.New("-tools: the baseline is timed with -baseline PATH")
	}
	if o.dualStack {
		if !slices.Contains(o.tools, toolTopo) {
			return nil, errors.New("-dualstack times topo on a dual-stack file beside topo: keep topo in -tools")
		}
		o.tools = append(o.tools, toolDualStack)
	}
	if o.runs < 1 || o.slowRuns < 1 {
		return nil, errors.New("-runs and -per-command-runs must be at least 1")
	}
	if others := len(slices.DeleteFunc(slices.Clone(o.tools), func(t string) bool {
		return t == toolBaseline || t == toolDualStack || t == toolFloor
	})); others > 1 && !slices.Contains(o.tools, toolBatched) {
		return nil, errors.New("-tools: ratios are to the batched script, so include it (or time topo alone, with -baseline, -dualstack or the kernel floor)")
	}
	if o.check < 0 || o.check > 0 && (benchtopo.Topology{N: o.check, K: benchtopo.Networks(o.check, o.k)}).Check() != nil {
		return nil, fmt.Errorf("-check %d: a number of containers, or 0", o.check)
	}
	if !slices.Contains(o.tools, toolFloor) || !slices.Contains(o.tools, toolTopo) {
		o.check = 0 // nothing to check against
	}
	abs, err := filepath.Abs(o.topo)
	if err != nil {
		return nil, err
	}
	o.topo = abs
	if slices.Contains(o.tools, toolTopo) {
		if _, err := os.Stat(o.topo); err != nil {
			return nil, fmt.Errorf("-topo: %w (build it: go build -o bin/topo ./cmd/topo)", err)
		}
	}
	for _, p := range []string{"bash", "ip", "iptables", "iptables-restore", "sysctl"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("needs %s (Debian packages bash, iproute2, iptables, procps; see scripts/deps)", p)
		}
	}
	return o, nil
}

// sample is one command's cost.
type sample struct {
	wall time.Duration
	// rss is the peak resident set of the command's largest process, KiB.
	rss int64
}

// measurement is one up/plan/down cycle of one tool.
type measurement struct {
	up, plan, down sample
	// settle is how long after down returned the kernel took to finish
	// removing what down removed (a deleted namespace's links go
	// asynchronously, in the kernel's cleanup work).
	settle time.Duration
}

func run(o *options, stdout, stderr io.Writer) error {
	dir := o.keep
	if dir == "" {
		d, err := os.MkdirTemp("", "topo-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base, err := baseline()
	if err != nil {
		return err
	}

	results := map[int]map[string][]measurement{}
	start := time.Now()
	loadBefore := loadavg()
	if o.check > 0 {
		slab, slabErr := liveNamespaces()
		if err := checkFloor(context.Background(), o, filepath.Join(dir, "check"), o.check); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "N=%-5d the kernel floor leaves the kernel as topo does, and its down as before\n", o.check)
		// As after every run: the first timed up waits for nothing the
		// check's namespaces still hold.
		for done := time.Now(); slabErr == nil && time.Since(done) < cooldownMax; time.Sleep(10 * time.Millisecond) {
			if n, err := liveNamespaces(); err != nil || n <= slab+namespaceSlack {
				break
			}
		}
	}
	for _, n := range o.sizes {
		t := benchtopo.Topology{Project: "bench", N: n, K: benchtopo.Networks(n, o.k)}
		files, err := writeFiles(dir, t)
		if err != nil {
			return err
		}
		if slices.Contains(o.tools, toolFloor) {
			// Planned here, untimed, on the clean sandbox.
			if files.floor, err = writeFloorTarget(context.Background(), files.yaml); err != nil {
				return err
			}
		}
		results[n] = map[string][]measurement{}
		for r := range o.runs {
			// Rotate the order, so that no tool always runs first after a
			// change of size, or always right after another's teardown.
			for j := range o.tools {
				tool := o.tools[(j+r)%len(o.tools)]
				if tool == toolPerCommand && r >= o.slowRuns {
					continue
				}
				m, err := cycle(o, t, files, tool, base)
				if err != nil {
					return fmt.Errorf("N=%d, run %d, %s: %w", n, r+1, tool, err)
				}
				fmt.Fprintf(stderr, "N=%-5d run %d/%d  %-19s up %6.3fs  plan %6.3fs  down %6.3fs (+%.3fs)  peak %5.1f MiB\n",
					n, r+1, o.runs, tool, m.up.wall.Seconds(), m.plan.wall.Seconds(), m.down.wall.Seconds(), m.settle.Seconds(), mib(m.peak()))
				results[n][tool] = append(results[n][tool], m)
			}
		}
	}
	report(stdout, o, results, time.Since(start), loadBefore+" before, "+loadavg()+" after")
	return nil
}

// loadavg is the machine's 1-minute load average: other work on the
// machine skews the numbers, so the report says how busy it was.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

type files struct {
	// yaml6 is the same topology with every network dual stack.
	yaml, yaml6                  string
	perCommand, batched          scripts
	perCommandPaths, batchedPath [2]string
	// floor is the kernel floor's target (floor.go).
	floor string
}

// writeFiles writes the topology file and the scripts for t into dir.
func writeFiles(dir string, t benchtopo.Topology) (*files, error) {
	f := &files{yaml: filepath.Join(dir, fmt.Sprintf("topo-%d.yaml", t.N)), perCommand: perCommand(t), batched: batched(t)}
	if err := os.WriteFile(f.yaml, t.YAML(), 0o644); err != nil {
		return nil, err
	}
	// In a folder of its own: the project is the same, its name comes
	// from the file.
	t6 := t
	t6.IPv6 = true
	f.yaml6 = filepath.Join(dir, "dualstack", fmt.Sprintf("topo-%d.yaml", t.N))
	if err := os.MkdirAll(filepath.Dir(f.yaml6), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.yaml6, t6.YAML(), 0o644); err != nil {
		return nil, err
	}
	write := func(name, content string) (string, error) {
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.sh", name, t.N))
		return p, os.WriteFile(p, []byte(content), 0o755)
	}
	var err error
	for i, w := range []struct {
		dst           *string
		name, content string
	}{
		{&f.perCommandPaths[0], "per-command-up", f.perCommand.up},
		{&f.perCommandPaths[1], "per-command-down", f.perCommand.down},
		{&f.batchedPath[0], "batched-up", f.batched.up},
		{&f.batchedPath[1], "batched-down", f.batched.down},
	} {
		if *w.dst, err = write(w.name, w.content); err != nil {
			return nil, fmt.Errorf("write script %d: %w", i, err)
		}
	}
	return f, nil
}

// cycle brings t up with tool, checks the result, plans again (topo), tears
// it down and waits until the kernel is back to the baseline.
func cycle(o *options, t benchtopo.Topology, f *files, tool string, base kernelCount) (measurement, error) {
	var m measurement
	if got, err := count(); err != nil {
		return m, err
	} else if got != base {
		return m, fmt.Errorf("the sandbox is not clean before up: %s, want %s", got, base)
	}
	// Before up, so that the previous run's namespaces are counted as
	// gone only once the kernel has freed them.
	slab, slabErr := liveNamespaces()
	if slabErr != nil {
		slab = 1 << 30 // no slabinfo: settle on links and names only
	}
	var up, down []string
	bin, yaml := o.topo, f.yaml
	switch tool {
	case toolDualStack:
		yaml = f.yaml6
		up = []string{bin, "-f", yaml, "up"}
		down = []string{bin, "-f", yaml, "down"}
	case toolBaseline:
		bin = o.baseline
		fallthrough
	case toolTopo:
		up = []string{bin, "-f", f.yaml, "up"}
		down = []string{bin, "-f", f.yaml, "down"}
	case toolFloor:
		var err error
		if up, err = floorCommand("up", f.floor); err != nil {
			return m, err
		}
		if down, err = floorCommand("down", f.floor); err != nil {
			return m, err
		}
	case toolBatched:
		up, down = []string{"bash", f.batchedPath[0]}, []string{"bash", f.batchedPath[1]}
	case toolPerCommand:
		up, down = []string{"bash", f.perCommandPaths[0]}, []string{"bash", f.perCommandPaths[1]}
	}
	var err error
	if m.up, err = measure(o.timeout, up); err != nil {
		return m, fmt.Errorf("up: %w", err)
	}
	want := kernelCount{links: base.links + t.K + t.N, namespaces: base.namespaces + t.N}
	if got, err := count(); err != nil {
		return m, err
	} else if got.links < want.links || got.namespaces != want.namespaces {
		return m, fmt.Errorf("after up: %s, want %s", got, want)
	}
	if tool == toolTopo || tool == toolBaseline || tool == toolDualStack {
		// The kernel finishes bringing new links up in deferred work that
		// takes the same lock as every netlink change (IPv6 duplicate
		// address detection runs about a second after a link goes up); a
		// plan is timed once that is over, as when a person runs it.
		time.Sleep(planDelay)
		// A converged project plans no change: exit 0, not 2.
		if m.plan, err = measure(o.timeout, []string{bin, "-f", yaml, "plan", "--detailed-exitcode"}); err != nil {
			return m, fmt.Errorf("no-op plan: %w", err)
		}
	}
	if m.down, err = measure(o.timeout, down); err != nil {
		return m, fmt.Errorf("down: %w", err)
	}
	settled := time.Now()
	if m.settle, err = settle(base, o.timeout); err != nil {
		return m, err
	}
	// The kernel frees deleted namespaces later still, in cleanup work
	// that holds locks the next command needs: before the next run, wait
	// (untimed) until its count of them is back to where it was before
	// up. Other programs on the machine make namespaces too, so this
	// waits at most cooldownMax.
	for time.Since(settled) < cooldownMax {
		if n, err := liveNamespaces(); err != nil || n <= slab+namespaceSlack {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return m, nil
}

// settle waits until the sandbox holds what it held before up, and
// returns how long that took.
func settle(base kernelCount, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		got, err := count()
		if err != nil {
			return 0, err
		}
		if got == base {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("after down the kernel did not settle in %s: %s, want %s", timeout, got, base)
		}
		time.Sleep(time.Millisecond)
	}
}

// cooldownMax bounds the untimed wait for the kernel to free the
// namespaces of a run.
const cooldownMax = 15 * time.Second

// namespaceSlack is how far the kernel's count of network namespaces may
// be above its count before up when a run counts as settled: the count is
// approximate (per-CPU slabs) and other programs on the machine make and
// delete namespaces too.
const namespaceSlack = 32

// planDelay is the pause between up and the timed no-op plan.
const planDelay = 2 * time.Second

// liveNamespaces is the kernel's count of network namespace objects,
// including those deleted but not yet freed (slab net_namespace).
func liveNamespaces() (int, error) {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "net_namespace" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, errors.New("no net_namespace slab")
}

// measure runs argv and returns its wall time and peak memory.
func measure(timeout time.Duration, argv []string) (sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	s := sample{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		s.rss = maxRSS(cmd.ProcessState)
	}
	if err != nil {
		return s, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out.String())
	}
	return s, nil
}

// tail keeps the last lines a command printed, for its error message.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	const keep = 4096
	t.b = append(t.b, p...)
	if len(t.b) > 2*keep {
		t.b = append(t.b[:0], t.b[len(t.b)-keep:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// kernelCount is what the sandbox holds: links of its own namespace and
// named namespaces.
type kernelCount struct{ links, namespaces int }

func (c kernelCount) String() string {
	return fmt.Sprintf("%d links and %d namespaces", c.links, c.namespaces)
}

// count reads the sandbox's links (its /sys is its own) and namespaces.
func count() (kernelCount, error) {
	links, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return kernelCount{}, err
	}
	ns, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return kernelCount{}, err
	}
	return kernelCount{len(links), len(ns)}, nil
}

func baseline() (kernelCount, error) {
	c, err := count()
	if err == nil && c.namespaces != 0 {
		err = fmt.Errorf("the sandbox starts with %d namespaces", c.namespaces)
	}
	return c, err
}

func (m measurement) peak() int64 { return max(m.up.rss, m.plan.rss, m.down.rss) }

func mib(kib int64) float64 { return float64(kib) / 1024 }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summary is the medians of one tool at one size.
type summary struct {
	up, plan, down, settled time.Duration
	peak                    int64
}

func summarize(ms []measurement) summary {
	var up, plan, down, settled []time.Duration
	var s summary
	for _, m := range ms {
		up = append(up, m.up.wall)
		plan = append(plan, m.plan.wall)
		down = append(down, m.down.wall)
		settled = append(settled, m.down.wall+m.settle)
		s.peak = max(s.peak, m.peak())
	}
	s.up, s.plan, s.down, s.settled = median(up), median(plan), median(down), median(settled)
	return s
}

func report(w io.Writer, o *options, results map[int]map[string][]measurement, took time.Duration, load string) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var more []string
	for _, n := range o.sizes {
		if k := benchtopo.Networks(n, o.k); k > o.k {
			more = append(more, fmt.Sprintf("%d at N=%d", k, n))
		}
	}
	networks := strconv.Itoa(o.k)
	if len(more) > 0 {
		networks += " (" + strings.Join(more, ", ") + ": a bridge has 1023 ports)"
	}
	fmt.Fprintf(w, "\nN containers on %s bridge networks, one published port and one name each; median of %d runs (per-command script: %d); %d CPUs, Linux %s, %s; load average %s; the whole run took %s.\n\n",
		networks, o.runs, min(o.runs, o.slowRuns), runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version(), load, took.Round(time.Second))
	fmt.Fprintln(w, "| N | tool | up | × batched | no-op plan | down | down, settled | × batched | peak RSS |")
	fmt.Fprintln(w, "|--:|:--|--:|--:|--:|--:|--:|--:|--:|")
	sums := map[int]map[string]summary{}
	for _, n := range o.sizes {
		sums[n] = map[string]summary{}
		for _, tool := range allTools {
			if ms := results[n][tool]; len(ms) > 0 {
				sums[n][tool] = summarize(ms)
			}
		}
		ref, haveRef := sums[n][toolBatched]
		for _, tool := range allTools {
			s, ok := sums[n][tool]
			if !ok {
				continue
			}
			upRatio, downRatio, plan := "", "", "–"
			if haveRef {
				upRatio = fmt.Sprintf("%.2f×", s.up.Seconds()/ref.up.Seconds())
				downRatio = fmt.Sprintf("%.2f×", s.settled.Seconds()/ref.settled.Seconds())
			}
			if tool == toolTopo || tool == toolBaseline || tool == toolDualStack {
				plan = secs(s.plan)
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %.1f MiB |\n",
				n, tool, secs(s.up), upRatio, plan, secs(s.down), secs(s.settled), downRatio, mib(s.peak))
		}
	}
	fmt.Fprintln(w, "\n\"down, settled\" runs until the kernel has removed every link and namespace name (a deleted namespace's veths go asynchronously, after the command returns); ratios use it. Between runs the benchmark also waits, untimed, for the kernel to free the deleted namespaces. The no-op plan runs 2 s after up. Peak RSS is of the largest process a command ran.")
	if o.baseline != "" {
		againstBaseline(w, o, sums)
	}
	if o.dualStack {
		dualStackCost(w, o, sums)
	}
	if slices.Contains(o.tools, toolFloor) {
		againstFloor(w, o, sums, results)
	}
	memoryAndScale(w, o, sums, results)
	targets(w, sums)
}

// Issue 24's memory and scale targets.
const (
	// kibPerContainer bounds topo's peak RSS per container above a fixed
	// base: the slope of the peak between the run's smallest and largest
	// N.
	kibPerContainer = 25
	// scaleLarge and scaleSmall are the sizes of the scale target:
	// N=5000 at most scaleRatio times N=1000, up and down.
	scaleLarge, scaleSmall = 5000, 1000
	scaleRatio             = 5.5
)

// memoryAndScale prints topo's peak RSS per container above a fixed base,
// and its times at N=5000 over those at N=1000 (medians, then each
// round's), against issue 24's targets.
func memoryAndScale(w io.Writer, o *options, sums map[int]map[string]summary, results map[int]map[string][]measurement) {
	var rows []string
	lo, hi := slices.Min(o.sizes), slices.Max(o.sizes)
	tlo, okLo := sums[lo][toolTopo]
	thi, okHi := sums[hi][toolTopo]
	if okLo && okHi && hi > lo {
		per := float64(thi.peak-tlo.peak) / float64(hi-lo)
		base := float64(tlo.peak) - per*float64(lo)
		rows = append(rows, fmt.Sprintf("| peak RSS per container above a base of %.1f MiB (N=%d: %.1f MiB, N=%d: %.1f MiB) | %.1f KiB | at most %d KiB | %s |",
			base/1024, lo, mib(tlo.peak), hi, mib(thi.peak), per, kibPerContainer, metOr(per <= kibPerContainer)))
	}
	big, okBig := sums[scaleLarge][toolTopo]
	small, okSmall := sums[scaleSmall][toolTopo]
	if okBig && okSmall {
		rb, rs := results[scaleLarge][toolTopo], results[scaleSmall][toolTopo]
		row := func(what string, of func(summary) time.Duration, ofRun func(measurement) time.Duration, target bool) {
			r := of(big).Seconds() / of(small).Seconds()
			var rounds []string
			for i := range min(len(rb), len(rs)) {
				rounds = append(rounds, fmt.Sprintf("%.2f", ofRun(rb[i]).Seconds()/ofRun(rs[i]).Seconds()))
			}
			goal, mark := "–", "–"
			if target {
				goal, mark = fmt.Sprintf("at most %.1f×", scaleRatio), metOr(r <= scaleRatio)
			}
			rows = append(rows, fmt.Sprintf("| %s at N=%d / N=%d (%s / %s; per round %s) | %.2f× | %s | %s |",
				what, scaleLarge, scaleSmall, secs(of(big)), secs(of(small)), strings.Join(rounds, ", "), r, goal, mark))
		}
		row("up", func(s summary) time.Duration { return s.up }, func(m measurement) time.Duration { return m.up.wall }, true)
		row("no-op plan", func(s summary) time.Duration { return s.plan }, func(m measurement) time.Duration { return m.plan.wall }, false)
		row("down, settled", func(s summary) time.Duration { return s.settled }, func(m measurement) time.Duration { return m.down.wall + m.settle }, true)
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\ntopo's memory and scale (issue 24), same run:")
	fmt.Fprintln(w, "\n| measure | topo | target | |")
	fmt.Fprintln(w, "|:--|--:|:--|:--|")
	fmt.Fprintln(w, strings.Join(rows, "\n"))
}

func metOr(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// againstFloor compares topo with the kernel floor, timed in the same
// run: each ratio is topo's over the floor's, medians and then each
// round's (the r-th run of each, timed one after the other).
func againstFloor(w io.Writer, o *options, sums map[int]map[string]summary, results map[int]map[string][]measurement) {
	fmt.Fprintln(w, "\ntopo against the kernel floor (the least work that leaves the same kernel state, see BENCHMARKS.md), same run; ratio = topo / floor, down settled:")
	fmt.Fprintln(w, "\n| N | topo up | floor up | ratio | topo down | floor down | ratio | peak RSS topo / floor | up ratio per round | down ratio per round |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|:--|:--|")
	for _, n := range o.sizes {
		t, ok := sums[n][toolTopo]
		f, okF := sums[n][toolFloor]
		if !ok || !okF {
			continue
		}
		var ups, downs []string
		tr, fr := results[n][toolTopo], results[n][toolFloor]
		for r := range min(len(tr), len(fr)) {
			ups = append(ups, fmt.Sprintf("%.2f", tr[r].up.wall.Seconds()/fr[r].up.wall.Seconds()))
			downs = append(downs, fmt.Sprintf("%.2f", (tr[r].down.wall+tr[r].settle).Seconds()/(fr[r].down.wall+fr[r].settle).Seconds()))
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.2f× | %s | %s | %.2f× | %.1f / %.1f MiB | %s | %s |\n", n,
			secs(t.up), secs(f.up), t.up.Seconds()/f.up.Seconds(),
			secs(t.settled), secs(f.settled), t.settled.Seconds()/f.settled.Seconds(),
			mib(t.peak), mib(f.peak), strings.Join(ups, ", "), strings.Join(downs, ", "))
	}
}

// againstBaseline compares topo with the baseline binary, timed in the
// same run: each column is topo's median over the baseline's, so that
// 1.05× is 5% slower.
func againstBaseline(w io.Writer, o *options, sums map[int]map[string]summary) {
	fmt.Fprintf(w, "\ntopo (%s) against the baseline (%s), same run; ratio = topo / baseline:\n\n", o.topo, o.baseline)
	fmt.Fprintln(w, "| N | up | baseline | ratio | no-op plan | baseline | ratio | down, settled | baseline | ratio | peak RSS | baseline |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	var slower []string
	for _, n := range o.sizes {
		t, ok := sums[n][toolTopo]
		b, okB := sums[n][toolBaseline]
		if !ok || !okB {
			continue
		}
		ratio := func(name string, a, b time.Duration) string {
			r := a.Seconds() / b.Seconds()
			if r > 1.05 {
				slower = append(slower, fmt.Sprintf("%s at N=%d (%.2f×)", name, n, r))
			}
			return fmt.Sprintf("%.2f×", r)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f MiB | %.1f MiB |\n", n,
			secs(t.up), secs(b.up), ratio("up", t.up, b.up),
			secs(t.plan), secs(b.plan), ratio("no-op plan", t.plan, b.plan),
			secs(t.settled), secs(b.settled), ratio("down", t.settled, b.settled),
			mib(t.peak), mib(b.peak))
	}
	if len(slower) == 0 {
		fmt.Fprintln(w, "\nNo median more than 5% slower than the baseline's.")
		return
	}
	fmt.Fprintf(w, "\nMore than 5%% slower than the baseline: %s.\n", strings.Join(slower, ", "))
}

// dualStackCost compares topo on the dual-stack file with topo on the
// IPv4-only one, same run: issue 19's target is under 30% more.
func dualStackCost(w io.Writer, o *options, sums map[int]map[string]summary) {
	fmt.Fprintln(w, "\nDual stack against IPv4 only, same binary and run; ratio = dual stack / IPv4 only (target: under 1.30×):")
	fmt.Fprintln(w, "\n| N | up | IPv4 only | ratio | no-op plan | IPv4 only | ratio | down, settled | IPv4 only | ratio |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, n := range o.sizes {
		d, okD := sums[n][toolDualStack]
		t, ok := sums[n][toolTopo]
		if !ok || !okD {
			continue
		}
		ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds()) }
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
			secs(d.up), secs(t.up), ratio(d.up, t.up), secs(d.plan), secs(t.plan), ratio(d.plan, t.plan),
			secs(d.settled), secs(t.settled), ratio(d.settled, t.settled))
	}
}

// targets checks issue 7's goals, and issue 24's against the kernel
// floor, against the medians, where the run has
// the sizes they need.
func targets(w io.Writer, sums map[int]map[string]summary) {
	var lines []string
	check := func(ok bool, format string, args ...any) {
		lines = append(lines, fmt.Sprintf("- %s: %s", fmt.Sprintf(format, args...), metOr(ok)))
	}
	topo500, ok500 := sums[500][toolTopo]
	ref500, okRef := sums[500][toolBatched]
	if ok500 && okRef {
		r := topo500.up.Seconds() / ref500.up.Seconds()
		check(r <= 0.6, "up at N=500 at most 0.6× the batched script: %.2f×", r)
		r = topo500.settled.Seconds() / ref500.settled.Seconds()
		check(r <= 1.0, "down at N=500 at most 1.0× the batched script: %.2f×", r)
	}
	topo1000, ok1000 := sums[1000][toolTopo]
	if ok1000 {
		check(topo1000.plan < 300*time.Millisecond, "no-op plan at N=1000 under 0.3 s: %s", secs(topo1000.plan))
		check(topo1000.peak < 100*1024, "peak memory at N=1000 under 100 MiB: %.1f MiB", mib(topo1000.peak))
	}
	if ok500 && ok1000 {
		r := topo1000.up.Seconds() / topo500.up.Seconds()
		check(r <= 2.2, "up at N=1000 at most 2.2× N=500: %.2f×", r)
		r = topo1000.settled.Seconds() / topo500.settled.Seconds()
		check(r <= 2.2, "down at N=1000 at most 2.2× N=500: %.2f×", r)
	}
	for _, n := range []int{500, 1000, 2000} {
		t, ok := sums[n][toolTopo]
		f, okF := sums[n][toolFloor]
		if !ok || !okF {
			continue
		}
		r := t.up.Seconds() / f.up.Seconds()
		check(r <= 1.2, "up at N=%d at most 1.2× the kernel floor: %.2f×", n, r)
		r = t.settled.Seconds() / f.settled.Seconds()
		check(r <= 1.1, "down at N=%d at most 1.1× the kernel floor: %.2f×", n, r)
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nTargets:\n%s\n", strings.Join(lines, "\n"))
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
