package linux

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

// openFrom lists the process's open descriptors numbered from low up.
func openFrom(t *testing.T, low int) []int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range es {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= low {
			fds = append(fds, fd)
		}
	}
	return fds
}

// TestGrowFileTable: the table grows to reservedFiles at once (or to the
// limit), and the copy it makes for that is closed.
func TestGrowFileTable(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := min(reservedFiles, int(lim.Cur))
	if fdSize(t) >= want {
		t.Skipf("file table already holds %d descriptors", fdSize(t))
	}
	// The table is smaller than want, so no descriptor from want-1 up is
	// open; the copy is made there. (Counting all open descriptors, as
	// this test once did, fails when a collection closes a file that an
	// earlier test dropped meanwhile.)
	GrowFileTable()
	if got := fdSize(t); got < want {
		t.Errorf("file table holds %d descriptors after GrowFileTable, want at least %d", got, want)
	}
	if left := openFrom(t, want-1); len(left) > 0 {
		t.Errorf("descriptors %v open after GrowFileTable: its copy was not closed", left)
	}
}
