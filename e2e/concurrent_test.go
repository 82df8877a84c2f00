package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// concurrentFile is a small project that uses everything projects share:
// a network that reaches out (the shared FORWARD chains and their jumps,
// ip_forward and its record), an internal one (TOPO-ISOLATION and
// TOPO-INPUT), a publish (the nat jumps), and a name (a resolver). Its
// subnets are the pool's: two projects planned at once would pick the
// same one.
func concurrentFile(project string, i int) string {
	return fmt.Sprintf(`name: %s
networks:
  out: {}
  in: {internal: true}
containers:
  a: {networks: [out, in], ports: ["%d:80"]}
  b: {networks: [in]}
`, project, 18100+i)
}

// TestConcurrentProjects brings 5 projects up and down at the same time,
// round after round: in even rounds every up starts at once, then every
// plan, then every down; in odd rounds each project goes up, is planned
// and goes down on its own schedule, so that ups meet the others' downs.
// Every run must succeed (plan finding nothing to do), and after each
// round nothing of any project is left, in the kernel, iptables or
// /run/topo, and ip_forward is back to what it was.
// TOPO_CONCURRENT_ROUNDS sets the number of rounds (default 20; scripts/soak
// concurrent runs more).
func TestConcurrentProjects(t *testing.T) {
	rounds := 20
	if v, err := strconv.Atoi(os.Getenv("TOPO_CONCURRENT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	const projects = 5
	h := newHost(t)
	h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
	before := h.snapshot()
	files := make([]string, projects)
	for i := range files {
		files[i] = writeFile(t, fmt.Sprintf("p%d", i), concurrentFile(fmt.Sprintf("p%d", i), i))
	}
	verbs := [][]string{{"up"}, {"plan", "--detailed-exitcode"}, {"down"}}
	run := func(round, i int, verb []string) error {
		args := append(append([]string{}, verb...), "-f", files[i])
		out, errOut, code := h.topo(args...)
		if code != 0 {
			return fmt.Errorf("round %d, p%d: topo %s: exit %d\n%s\n%s", round, i, strings.Join(args, " "), code, lastLines(out, 8), errOut)
		}
		return nil
	}
	start := time.Now()
	runs, clean := 0, 0
	defer func() {
		t.Logf("%d projects: %d of %d rounds (%d topo runs, %s) with every up, plan and down succeeding and nothing left after the round",
			projects, clean, rounds, runs, time.Since(start).Round(time.Millisecond))
	}()
	for r := 1; r <= rounds; r++ {
		errs := make([]error, projects)
		if r%2 == 0 {
			for _, verb := range verbs {
				var wg sync.WaitGroup
				for i := range projects {
					wg.Go(func() {
						if errs[i] == nil {
							errs[i] = run(r, i, verb)
						}
					})
				}
				wg.Wait()
			}
		} else {
			var wg sync.WaitGroup
			for i := range projects {
				wg.Go(func() {
					for _, verb := range verbs {
						if errs[i] == nil {
							errs[i] = run(r, i, verb)
						}
					}
				})
			}
			wg.Wait()
		}
		runs += projects * len(verbs)
		failed := false
		for _, err := range errs {
			if err != nil {
				t.Error(err)
				failed = true
			}
		}
		if failed {
			// Bring down what is up, so that the next test starts clean.
			for i := range files {
				h.topo("down", "-f", files[i])
			}
			break
		}
		if after := h.snapshot(); after != before {
			t.Fatalf("round %d: after every down, the sandbox differs from before:\nbefore:\n%s\nafter:\n%s", r, before, after)
		}
		if got := h.forwarding(); got != "0" {
			t.Fatalf("round %d: ip_forward after the last down: %s, want 0", r, got)
		}
		clean++
	}
}

// lastLines is the end of out, for messages about long outputs.
func lastLines(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
