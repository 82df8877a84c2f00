package machine

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/topolab/topo/op"
)

// Faults is a Machine that fails, or crashes at, given operations of the
// Machine it wraps, counting every operation it performs (1-based, undos
// included, each operation of a batch as one), for topo's own crash and
// rollback tests: the CLI's TOPO_FAULT_AT and TOPO_CRASH_AT (FaultsFromEnv)
// and the transaction proofs. It batches as the machine it wraps does,
// except that a batch never spans the operation a fault is at: the
// operations before it still run together, and the one at it where the
// fault says.
type Faults struct {
	Machine
	// FailAt is the operation that fails, without running, with
	// ErrInjected; 0 for none.
	FailAt int
	// CrashAt is the operation the machine crashes at: after it ran, or
	// with Before instead of it; 0 for none.
	CrashAt int
	Before  bool
	// Partial, when set, runs instead of the operation a crash is at, to
	// leave it half done as only a real kernel can.
	Partial func(op.Operation)
	// Crash ends the run: as kill -9 would, or as a test stands for it.
	Crash func()
	// Fail, when set, is asked before each operation; an error fails it
	// without running.
	Fail func(op.Operation) error

	mu sync.Mutex
	n  int
	// Crashed is the operation the crash came at.
	Crashed op.Operation
}

// ErrInjected is the failure Faults injects.
var ErrInjected = errors.New("fault injected by TOPO_FAULT_AT")

// FaultsFromEnv wraps m in the Faults that TOPO_FAULT_AT=k (the k-th
// operation of this run fails) and TOPO_CRASH_AT=k (topo kills itself with
// SIGKILL right after the k-th ran, before the journal records its end)
// ask for, or returns m when neither is set. They are test hooks of topo's
// own tests.
func FaultsFromEnv(m Machine) Machine {
	fail, _ := strconv.Atoi(os.Getenv("TOPO_FAULT_AT"))
	crash, _ := strconv.Atoi(os.Getenv("TOPO_CRASH_AT"))
	if fail <= 0 && crash <= 0 {
		return m
	}
	return &Faults{Machine: m, FailAt: fail, CrashAt: crash, Crash: func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it to land
	}}
}

// next numbers the next operation.
func (f *Faults) next() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.n
}

// Count is how many operations ran or were tried.
func (f *Faults) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Batch is the wrapped machine's, cut before the operation a fault is at
// (and after the one a crash is at).
func (f *Faults) Batch(ops []op.Operation) int {
	if f.Fail != nil {
		return 1
	}
	n := f.Machine.Batch(ops)
	first := f.Count() + 1
	if f.FailAt >= first && f.FailAt < first+n {
		n = max(f.FailAt-first, 1)
	}
	if f.CrashAt >= first && f.CrashAt < first+n {
		if f.Before || f.Partial != nil {
			n = max(f.CrashAt-first, 1)
		} else {
			n = f.CrashAt - first + 1
		}
	}
	return n
}

// Apply performs o unless a fault is at it.
func (f *Faults) Apply(ctx context.Context, o op.Operation) error {
	i := f.next()
	if i == f.FailAt {
		return ErrInjected
	}
	if f.Fail != nil {
		if err := f.Fail(o); err != nil {
			return err
		}
	}
	if i != f.CrashAt {
		return f.Machine.Apply(ctx, o)
	}
	f.mu.Lock()
	f.Crashed = o
	f.mu.Unlock()
	switch {
	case f.Partial != nil:
		f.Partial(o)
	case !f.Before:
		_ = f.Machine.Apply(ctx, o)
	}
	f.Crash()
	return nil
}

// ApplyBatch performs a batch that Batch cut, crashing after it when the
// crash is at its last operation.
func (f *Faults) ApplyBatch(ctx context.Context, ops []op.Operation) []error {
	f.mu.Lock()
	first := f.n + 1
	f.n += len(ops)
	f.mu.Unlock()
	errs := f.Machine.ApplyBatch(ctx, ops)
	if last := first + len(ops) - 1; f.CrashAt >= first && f.CrashAt <= last {
		f.mu.Lock()
		f.Crashed = ops[f.CrashAt-first]
		f.mu.Unlock()
		f.Crash()
	}
	return errs
}
