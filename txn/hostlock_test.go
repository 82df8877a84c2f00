package txn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/topolab/topo/lock"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/txn"
)

// TestHostLockSerialisesProjects: while one project holds its locks, a
// second project cannot take the host's lock; the last project's release
// removes the host's lock with the rest, and a project that was waiting
// for it takes a new one.
func TestHostLockSerialisesProjects(t *testing.T) {
	root := runDir(t)
	k := fake.New(nil)
	a := &txn.Project{Name: "a", Machine: k, Dir: filepath.Join(root, "a")}
	b := &txn.Project{Name: "b", Machine: k, Dir: filepath.Join(root, "b")}
	ctx := context.Background()
	if err := a.Lock(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	var waitedForHost bool
	err := b.Lock(ctx, 0, func(pid int, host bool) { waitedForHost = host && pid == os.Getpid() })
	var busy *lock.BusyError
	if !errors.As(err, &busy) || !waitedForHost {
		t.Fatalf("second project's Lock while the first holds the host's lock: %v (waited for the host's: %v), want a BusyError on it", err, waitedForHost)
	}
	// b released its own lock on the way out: another process may take it.
	if _, err := os.Stat(filepath.Join(root, "b", txn.LockFile)); err != nil {
		t.Fatalf("b's lock file: %v", err)
	}
	hostLock := filepath.Join(root, names.HostLockName)
	if fi, err := os.Stat(hostLock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host lock: %v, %v; want mode 0600", fi, err)
	}
	if _, err := a.Down(ctx); err != nil {
		t.Fatal(err)
	}
	// b's folder is still there (its lock file), so the host's lock stays.
	if _, err := os.Stat(hostLock); err != nil {
		t.Fatalf("host lock after a's down, b's folder still there: %v", err)
	}
	if err := b.Lock(ctx, 0, nil); err != nil {
		t.Fatalf("b's Lock after a's down: %v", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	// b was the last: nothing of either, nor the host's lock, is left.
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Errorf("root after the last project's unlock: %v, %v; want it empty", entries, err)
	}
}
