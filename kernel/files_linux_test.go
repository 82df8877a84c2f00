package kernel

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdSize is the size of the process's file table, as /proc tells.
func fdSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

// openFiles counts the process's open descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestGrowFileTable: the table grows to ReservedFiles at once (or to the
// limit), and the copy it makes for that is closed.
func TestGrowFileTable(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := min(ReservedFiles, int(lim.Cur))
	if fdSize(t) >= want {
		t.Skipf("file table already holds %d descriptors", fdSize(t))
	}
	before := openFiles(t)
	GrowFileTable()
	if got := fdSize(t); got < want {
		t.Errorf("file table holds %d descriptors after GrowFileTable, want at least %d", got, want)
	}
	if after := openFiles(t); after != before {
		t.Errorf("%d descriptors open after GrowFileTable, %d before", after, before)
	}
}
