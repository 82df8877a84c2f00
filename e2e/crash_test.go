package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bigFile is a topology of n containers on a few networks.
func bigFile(project string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnetworks:\n", project)
	for i := range 4 {
		fmt.Fprintf(&b, "  n%d: {}\n", i)
	}
	b.WriteString("containers:\n")
	for i := range n {
		fmt.Fprintf(&b, "  c%03d: {networks: [n%d]}\n", i, i%4)
	}
	return b.String()
}

// leftovers lists what of a project remains in a host: namespaces, marked
// links, runtime and /etc/netns files. Empty means nothing.
func (h *host) leftovers(project string) string {
	h.t.Helper()
	return h.mustSh(fmt.Sprintf(`ip netns list; ip -o link | grep -o 'alias topo:%[1]s:[^ ]*' || true; find /run/topo /etc/netns -mindepth 1 2>/dev/null || true`, project))
}

// killAfter starts topo with args inside the host, kills it with SIGKILL
// after d, and returns how far it got: the journal's length in records
// ("-" when topo had finished or not begun).
func (h *host) killAfter(d time.Duration, project string, args ...string) string {
	h.t.Helper()
	script := fmt.Sprintf(`%s %s >/dev/null 2>&1 & p=$!; sleep %.3f; kill -9 $p 2>/dev/null && echo killed; wait $p 2>/dev/null; { wc -l < /run/topo/%s/journal; } 2>/dev/null || echo -`,
		topoBin, strings.Join(args, " "), d.Seconds(), project)
	out, _ := h.sh(script)
	return strings.Join(strings.Fields(out), " ")
}

// timed runs topo, which must succeed, and returns how long it took.
func (h *host) timed(args ...string) time.Duration {
	h.t.Helper()
	start := time.Now()
	h.mustTopo(args...)
	return time.Since(start)
}

// TestCrashRecovery kills `topo up` and `topo down` of a 300-container
// file with SIGKILL at random moments; after each kill one `up` must
// converge (plan then exits 0) and one `down` must leave nothing. The
// kills run on a few sandbox hosts at once (deleting veths is slow in the
// kernel and waits rather than computes). TOPO_CRASH_KILLS sets the
// number of kills (default 20; scripts/soak runs more), TOPO_CRASH_SEED
// replays a run.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills topo many times on a 300-container file")
	}
	kills := 20
	if v, err := strconv.Atoi(os.Getenv("TOPO_CRASH_KILLS")); err == nil && v > 0 {
		kills = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("TOPO_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (TOPO_CRASH_SEED=%d replays it), %d kills", seed, seed, kills)
	const workers = 4
	type row struct {
		kill             int
		op               string
		delay            time.Duration
		at               string
		recovered, clean bool
		took             time.Duration
	}
	var (
		mu     sync.Mutex
		rows   []row
		misses = map[string]int{} // attempts not counted, by why
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
				h := newHost(t)
				file := writeFile(t, "crash", bigFile("crash", 300)+labChain(8))
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				// How long a whole up and down take here bounds the delays:
				// first measured now, then again by each attempt's own
				// uninterrupted up and down, as the machine's speed and the
				// other workers' load change (the first runs, with all
				// workers starting at once, were up to three times slower
				// than the later ones, and most kills then came after the
				// command had finished).
				upTime := h.timed("up", "-f", file)
				downTime := h.timed("down", "-f", file)
				// This worker's share of the kills; a kill counts when it
				// lands inside a transaction (the journal is there), so
				// attempts that hit before the journal (while topo
				// observes and plans, a good part of a fast run) or after
				// the end are retried, up to six times the share.
				share := (kills - w + workers - 1) / workers
				for i, attempt := w, 0; i < kills && attempt < 6*share; attempt++ {
					start := time.Now()
					r := row{kill: i + 1, op: "up"}
					if attempt%2 == 1 {
						r.op = "down"
						upTime = h.timed("up", "-f", file)
						r.delay = time.Duration(rng.Int64N(int64(downTime) * 9 / 10))
					} else {
						r.delay = time.Duration(rng.Int64N(int64(upTime) * 9 / 10))
					}
					r.at = h.killAfter(r.delay, "crash", r.op, "-f", file)
					landed := strings.HasPrefix(r.at, "killed") && !strings.HasSuffix(r.at, "-")
					out, errOut, code := h.topo("up", "-f", file)
					if code != 0 {
						t.Fatalf("kill %d (%s after %v, %s): up after it: exit %d\n%s\n%s", r.kill, r.op, r.delay, r.at, code, out, errOut)
					}
					r.recovered = strings.Contains(errOut, "undoing it first")
					if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
						t.Fatalf("kill %d (%s after %v): plan after the recovering up: exit %d, want 0", r.kill, r.op, r.delay, code)
					}
					downTime = h.timed("down", "-f", file)
					if left := h.leftovers("crash"); left != "" {
						t.Fatalf("kill %d (%s after %v): down after it left:\n%s", r.kill, r.op, r.delay, left)
					}
					r.clean = true
					r.took = time.Since(start)
					if !landed || !r.recovered {
						mu.Lock()
						switch {
						case !strings.HasPrefix(r.at, "killed"):
							misses["finished before the kill"]++
						case !landed:
							misses["killed before the journal"]++
						default:
							misses["journal there, nothing to undo"]++
						}
						mu.Unlock()
						continue
					}
					mu.Lock()
					rows = append(rows, r)
					mu.Unlock()
					i += workers
				}
			})
		}()
	}
	wg.Wait()
	// The summary table, in kill order.
	byKill := make([]*row, kills+1)
	for i := range rows {
		byKill[rows[i].kill] = &rows[i]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%4s  %-4s  %9s  %-24s  %-9s  %-12s  %s\n", "kill", "op", "delay", "killed? journal lines", "recovered", "plan+down ok", "cycle")
	n, ups := 0, 0
	for _, r := range byKill[1:] {
		if r == nil {
			continue
		}
		n++
		if r.op == "up" {
			ups++
		}
		fmt.Fprintf(&b, "%4d  %-4s  %9s  %-24s  %-9v  %-12v  %s\n", r.kill, r.op, r.delay.Round(time.Millisecond), r.at, r.recovered, r.clean, r.took.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "SUMMARY: %d kills (seed %d) inside a transaction (%d of up, %d of down), each undone by the next up; %d/%d times up converged, plan exited 0 and down left nothing\n", n, seed, ups, n-ups, n, kills)
	fmt.Fprintf(&b, "attempts not counted: %v\n", misses)
	t.Log(b.String())
	if n != kills {
		t.Errorf("%d of %d kills completed", n, kills)
	}
}
