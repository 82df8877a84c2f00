package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/safedir"
)

// TestStamper: each line gets the time of the read its first byte came
// in, a line cut across writes keeps its one time, and lines from before
// the index began get none.
func TestStamper(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "web.log")
	t0 := time.Date(2026, 12, 3, 17, 0, 0, 5, time.UTC)
	// "old\n" (4 bytes) came before the index; "one\ntw" at t0, "o\nthree\n" a second later.
	index := "4 " + itoa(t0.UnixNano()) + "\n10 " + itoa(t0.Add(time.Second).UnixNano()) + "\n"
	if err := os.WriteFile(log+".times", []byte(index), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	s := newStamper(&out, safedir.Runtime(dir), log, 0)
	for _, part := range []string{"old\none\ntw", "o\nthr", "ee\n"} {
		if _, err := s.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	want := "old\n" +
		"2026-12-03T17:00:00.000000005Z one\n" +
		"2026-12-03T17:00:00.000000005Z two\n" +
		"2026-12-03T17:00:01.000000005Z three\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
