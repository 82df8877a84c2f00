package main

import (
	"bytes"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/safedir"
)

// timeFormat is Docker's for logs --timestamps: RFC 3339 with nine
// digits of the second, in UTC.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logTime is an entry of a log's index of times (names.LogTimes): the
// bytes from offset on came at at.
type logTime struct {
	off int64
	at  time.Time
}

// stamper writes a log to w with each line after the time its first byte
// came (the index its command's shim kept) and a space, as docker logs
// --timestamps prints them. off is where in the log the next byte
// written is. A line from before the index began (a command of a topo
// before shims) has no time: it is written as it is.
type stamper struct {
	w     io.Writer
	tree  safedir.Tree
	index string
	off   int64
	times []logTime
	mid   bool // within a line
}

func newStamper(w io.Writer, tree safedir.Tree, log string, off int64) *stamper {
	return &stamper{w: w, tree: tree, index: names.LogTimes(log), off: off}
}

func (s *stamper) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for rest := b; len(rest) > 0; {
		if !s.mid {
			if at, ok := s.timeAt(s.off + int64(len(b)-len(rest))); ok {
				out.WriteString(at.UTC().Format(timeFormat) + " ")
			}
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			out.Write(rest)
			s.mid = true
			break
		}
		out.Write(rest[:i+1])
		rest = rest[i+1:]
		s.mid = false
	}
	s.off += int64(len(b))
	if _, err := s.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// timeAt is when the byte at off came: the entry of the index at or
// before it. The index is read again for bytes past its last entry,
// which may have come since it was read.
func (s *stamper) timeAt(off int64) (time.Time, bool) {
	if n := len(s.times); n == 0 || s.times[n-1].off < off {
		s.times = readLogTimes(s.tree, s.index)
	}
	i := sort.Search(len(s.times), func(i int) bool { return s.times[i].off > off })
	if i == 0 {
		return time.Time{}, false
	}
	return s.times[i-1].at, true
}

// readLogTimes reads an index of times, "OFFSET UNIX-NANOSECONDS" a line;
// a missing one, or lines it cannot read, are no entries.
func readLogTimes(tree safedir.Tree, path string) []logTime {
	b, _ := tree.ReadFile(path)
	var out []logTime
	for _, line := range strings.Split(string(b), "\n") {
		o, ns, ok := strings.Cut(line, " ")
		off, err1 := strconv.ParseInt(o, 10, 64)
		at, err2 := strconv.ParseInt(ns, 10, 64)
		if ok && err1 == nil && err2 == nil {
			out = append(out, logTime{off, time.Unix(0, at)})
		}
	}
	return out
}
