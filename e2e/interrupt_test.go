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

// exitInterrupted is topo's exit status after an interrupt.
const exitInterrupted = 130

// signalAfter starts topo with args inside the host, sends it sig after d
// (and again 10 ms later when twice: within the rollback the first one
// starts), and returns its exit status as the
// shell saw it and its stderr.
func (h *host) signalAfter(d time.Duration, sig string, twice bool, args ...string) (int, string) {
	h.t.Helper()
	again := ""
	if twice {
		again = "sleep 0.01; kill -" + sig + " $p 2>/dev/null;"
	}
	script := fmt.Sprintf(`%s %s >/dev/null 2>/run/interrupt.err & p=$!; sleep %.3f; kill -%s $p 2>/dev/null; %s wait $p; echo "exit $?"; cat /run/interrupt.err`,
		topoBin, strings.Join(args, " "), d.Seconds(), sig, again)
	out, _ := h.sh(script)
	// The shell may say "Killed" first.
	i := strings.Index(out, "exit ")
	if i < 0 {
		h.t.Fatalf("%s: %q", script, out)
	}
	first, rest, _ := strings.Cut(out[i:], "\n")
	code, err := strconv.Atoi(strings.TrimPrefix(first, "exit "))
	if err != nil {
		h.t.Fatalf("%s: %q", script, out)
	}
	return code, rest
}

// TestInterrupt sends SIGINT or SIGTERM, at random moments, to `topo up`
// (from nothing) and `topo down` (of everything) of a 150-container
// file. An interrupted up rolls back, an interrupted down finishes
// removing; both exit 130 and leave no journal, and the kernel is either
// fully as the file says or fully as before: never in between. Then a
// double interrupt, the second as kill -9, is recovered by the next up.
// TOPO_INTERRUPTS sets the number of single interrupts (default 4;
// scripts/soak interrupt runs more), TOPO_INTERRUPT_SEED replays a run.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: interrupts topo on a 150-container file")
	}
	interrupts := 4
	if v, err := strconv.Atoi(os.Getenv("TOPO_INTERRUPTS")); err == nil && v > 0 {
		interrupts = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("TOPO_INTERRUPT_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (TOPO_INTERRUPT_SEED=%d replays it), %d interrupts", seed, seed, interrupts)
	const workers = 2
	var (
		mu     sync.Mutex
		rows   []string
		landed = map[string]int{}
		misses = map[string]int{}
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
				h := newHost(t)
				file := writeFile(t, "intr", bigFile("intr", 150))
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				upTime := h.timed("up", "-f", file)
				downTime := h.timed("down", "-f", file)
				empty := h.settledSnapshot()
				forward := h.mustSh("sysctl -n net.ipv4.ip_forward")
				asFile := func() bool {
					_, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
					return code == 0
				}
				asBefore := func() bool {
					return h.settledSnapshot() == empty && h.mustSh("sysctl -n net.ipv4.ip_forward") == forward
				}
				share := (interrupts - w + workers - 1) / workers
				n := 0
				for attempt := 0; n < share && attempt < 6*share; attempt++ {
					op, bound := "up", upTime
					if attempt%2 == 1 {
						op, bound = "down", downTime
						upTime = h.timed("up", "-f", file)
					}
					sig := []string{"INT", "TERM"}[rng.IntN(2)]
					delay := time.Duration(rng.Int64N(int64(bound) * 9 / 10))
					start := time.Now()
					code, errOut := h.signalAfter(delay, sig, false, op, "-f", file)
					took := time.Since(start)
					caught := strings.Contains(errOut, "topo: interrupted by SIG"+sig)
					if code != 0 && !caught {
						if strings.Contains(errOut, "topo: ") {
							t.Fatalf("%s, SIG%s after %v: exit %d without saying it was interrupted:\n%s", op, sig, delay, code, errOut)
						}
						// Killed before topo watched for signals: a kill -9
						// in effect, with no journal yet; the next up
						// must find nothing to undo.
						mu.Lock()
						misses["signal before the handler"]++
						mu.Unlock()
					}
					if caught && code != exitInterrupted {
						t.Fatalf("%s, SIG%s after %v: exit %d, want %d:\n%s", op, sig, delay, code, exitInterrupted, errOut)
					}
					if left := h.mustSh("ls /run/topo/intr/journal 2>/dev/null || true"); left != "" {
						t.Fatalf("%s, SIG%s after %v: journal left:\n%s", op, sig, delay, errOut)
					}
					state := ""
					switch {
					case op == "down" && h.leftovers("intr") == "" && asBefore():
						state = "removed"
					case op == "down" && !caught && asFile():
						state = "as before" // killed before it began
					case op == "up" && asBefore():
						state = "as before"
					case op == "up" && asFile():
						state = "as the file says"
					default:
						t.Fatalf("%s, SIG%s after %v (exit %d): the kernel is neither as the file says nor as before:\n%s\nleft:\n%s", op, sig, delay, code, errOut, h.leftovers("intr"))
					}
					if op == "up" && state == "as the file says" {
						downTime = h.timed("down", "-f", file)
					}
					if !caught {
						mu.Lock()
						if code == 0 {
							misses["finished before the signal"]++
						}
						mu.Unlock()
						continue
					}
					n++
					mu.Lock()
					landed[op]++
					rows = append(rows, fmt.Sprintf("%-4s  SIG%-4s  %8s  exit %d  %-16s  %s", op, sig, delay.Round(time.Millisecond), code, state, took.Round(time.Millisecond)))
					mu.Unlock()
				}
				if n < share {
					t.Errorf("%d of %d interrupts landed inside a run", n, share)
				}
				// A second Ctrl-C is kill -9: the journal stays, the next
				// up undoes it and converges, down leaves nothing.
				for try := 0; try < 6; try++ {
					delay := upTime/4 + time.Duration(rng.Int64N(int64(upTime)/2))
					code, errOut := h.signalAfter(delay, "INT", true, "up", "-f", file)
					out, upErr, upCode := h.topo("up", "-f", file)
					if upCode != 0 {
						t.Fatalf("up after a double SIGINT (exit %d):\n%s\n%s\n%s", code, errOut, out, upErr)
					}
					if !asFile() {
						t.Fatalf("plan after the up that followed a double SIGINT is not empty")
					}
					h.mustTopo("down", "-f", file)
					if !asBefore() {
						t.Fatalf("down after a double SIGINT left:\n%s", h.leftovers("intr"))
					}
					if strings.Contains(upErr, "undoing it first") {
						mu.Lock()
						rows = append(rows, fmt.Sprintf("up    SIGINT x2  %7s  killed   recovered by the next up", delay.Round(time.Millisecond)))
						mu.Unlock()
						return
					}
				}
				t.Errorf("no double SIGINT landed inside a transaction in 6 tries")
			})
		}()
	}
	wg.Wait()
	t.Logf("\n%s\nSUMMARY: %d interrupts (seed %d) inside a run (%d of up, %d of down); each exited %d with no journal, the kernel fully as the file says or as before\nattempts not counted: %v",
		strings.Join(rows, "\n"), landed["up"]+landed["down"], seed, landed["up"], landed["down"], exitInterrupted, misses)
}
