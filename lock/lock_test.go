package lock

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topolab/topo/safedir"
)

// TestMain doubles as a helper process: with LOCK_HELPER set, the test
// binary takes that lock, says so, and sleeps until killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("LOCK_HELPER"); path != "" {
		l, err := Acquire(context.Background(), treeOf(path), path, 0, nil)
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Hour)
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestExcludesAndReportsHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proj", "lock")
	l, err := Acquire(context.Background(), treeOf(path), path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := Holder(treeOf(path), path); got != os.Getpid() {
		t.Errorf("Holder = %d, want %d", got, os.Getpid())
	}
	var told []int
	_, err = Acquire(context.Background(), treeOf(path), path, 100*time.Millisecond, func(pid int) { told = append(told, pid) })
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Pid != os.Getpid() || busy.Waited < 100*time.Millisecond {
		t.Fatalf("second Acquire: %v, want a BusyError naming pid %d after 100ms", err, os.Getpid())
	}
	if !strings.Contains(err.Error(), "held by pid") || len(told) != 1 || told[0] != os.Getpid() {
		t.Errorf("err %q, waiting called with %v", err, told)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(context.Background(), treeOf(path), path, 0, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// TestWaitersAfterRemove: down removes the lock file while holding it;
// a waiter that had opened the old file must lock the new one, and only one
// process may hold it at a time.
func TestWaitersAfterRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := Acquire(context.Background(), treeOf(path), path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		holders int
		peak    int
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Acquire(context.Background(), treeOf(path), path, 10*time.Second, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			holders++
			peak = max(peak, holders)
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
			mu.Lock()
			holders--
			mu.Unlock()
			l.Remove()
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if peak != 1 {
		t.Errorf("%d holders at once, want 1", peak)
	}
}

// TestDeadHolder: a holder killed with SIGKILL leaves its pid in the file
// but no lock; the next Acquire takes it at once.
func TestDeadHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LOCK_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	_, err = Acquire(context.Background(), treeOf(path), path, 0, nil)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Pid != cmd.Process.Pid {
		t.Fatalf("while the helper lives: %v, want busy by pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := Holder(treeOf(path), path); got != cmd.Process.Pid {
		t.Errorf("file names %d, want the dead %d", got, cmd.Process.Pid)
	}
	l, err := Acquire(context.Background(), treeOf(path), path, 0, nil)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	defer l.Release()
	if got := Holder(treeOf(path), path); got != os.Getpid() {
		t.Errorf("Holder = %d, want %d", got, os.Getpid())
	}
}

// treeOf is the Tree of the folder of a lock.
func treeOf(path string) safedir.Tree { return safedir.Runtime(filepath.Dir(path)) }
