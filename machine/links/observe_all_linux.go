package links

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// observeWorkers is how many namespaces Observe reads at once. Dumps need
// no lock the kernel shares between namespaces (they run under RCU), and
// each costs round trips, so a few readers overlap them: 4 took a no-op
// plan at N=1000 from 128 to 89 ms with the library's dumps. With topo's
// own dumps, on two cores, 2, 4 and 8 readers observe 500 namespaces in
// the same time: the work is CPU-bound there.
var observeWorkers = 4

// inParallel calls fn(0) … fn(n-1) from observeWorkers goroutines, and
// returns when all calls have.
func inParallel(n int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(observeWorkers, n) {
		wg.Go(func() {
			for i := range work {
				fn(i)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// observeAll reads the named namespaces, in the order given, skipping
// those deleted since the listing, and calls own for the project's, from
// the worker that found it to be the project's.
func (k *Kernel) observeAll(ctx context.Context, nss []string, project string, own func(ns string) error) ([]state.Namespace, error) {
	out := make([]state.Namespace, len(nss))
	errs := make([]error, len(nss))
	inParallel(len(nss), func(i int) {
		if errs[i] = ctx.Err(); errs[i] != nil {
			return
		}
		if out[i], errs[i] = k.observeNetns(nss[i], project); errs[i] == nil && names.Owns(out[i].Mark, project, names.KindNamespace) {
			errs[i] = own(nss[i])
		}
	})
	var kept []state.Namespace
	for i, name := range nss {
		switch err := errs[i]; {
		case errors.Is(err, os.ErrNotExist):
			// deleted since the listing
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("observe namespace %s: %w", name, err)
		default:
			kept = append(kept, out[i])
		}
	}
	return kept, nil
}
