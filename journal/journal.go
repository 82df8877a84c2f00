// Package journal records a transaction (one `up` or `down`) so that a later
// process can tell, after a crash, what was half done and undo it.
//
// The journal is an append-only file of JSON lines in the project's runtime
// folder. A run writes, in order:
//
//	{"rec":"begin","format":1,"verb":"up","pid":42,"time":"…","steps":57}
//	{"rec":"start","i":0,"step":{…, "undo":{…}}}   written before step 0 runs
//	{"rec":"done","i":0}                            or "failed" with "error"
//	…
//	{"rec":"undo","i":3}                            written before step 3's undo runs
//	{"rec":"undone","i":3}                          or "undo-failed"
//	{"rec":"commit"}                                or "rolled-back", "recovered"
//
// The step record carries the whole step with its undo, in the JSON of
// package op, so the journal alone says how to undo it: recovery needs
// neither the file nor the plan. The begin record carries the format of
// the records that follow (Format); a journal written before topo had one
// (issue 17's restructuring) has none and is format 0, whose records are
// those of format 1: it is read and recovered alike. A transaction without its end record is unfinished; Read returns it
// as a *Pending. A step that looks in flight is undone, which is safe
// whether or not it happened.
//
// Records are written, not synced: a record in the page cache survives the
// crash of the process that wrote it, which is what the journal is for.
// Nothing needs to survive a power loss: the kernel objects the journal
// describes do not outlive the machine's uptime (and the journal lives in
// /run, a tmpfs, with them). Syncing each step's record cost up to
// milliseconds a step where the runtime folder is on a disk (the
// benchmark measured up at N=500 about 0.7 s slower with it).
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/safedir"
)

// FileName is the journal's name in the project's runtime folder.
const FileName = names.JournalFile

// Format is the version of the records this package writes. Read accepts
// it and every earlier one, and refuses a journal of a later topo, whose
// records it may misread.
const Format = 1

// Record kinds.
const (
	recBegin      = "begin"
	recStart      = "start"
	recDone       = "done"
	recFailed     = "failed"
	recUndo       = "undo"
	recUndone     = "undone"
	recUndoFailed = "undo-failed"
	// End records: the transaction is over.
	RecCommit     = "commit"      // every step done and verified
	RecRolledBack = "rolled-back" // a step failed; the run undid what it did
	RecRecovered  = "recovered"   // a later process undid an interrupted run
)

type record struct {
	Rec    string     `json:"rec"`
	Format int        `json:"format,omitempty"`
	Verb   string     `json:"verb,omitempty"`
	Pid    int        `json:"pid,omitempty"`
	Time   *time.Time `json:"time,omitempty"`
	Steps  int        `json:"steps,omitempty"`
	I      int        `json:"i"`
	Step   *op.Step   `json:"step,omitempty"`
	Error  string     `json:"error,omitempty"`
}

// Writer appends one transaction's records.
type Writer struct {
	f   *os.File
	dir string
	// size is where the last whole record ends. broken is the first
	// failed write: the file was cut back to size, and nothing more is
	// written (see write).
	size   int64
	broken error
}

// Tree is the runtime folder that holds the project folder dir: the
// journal is reached from it without following links, and must be
// root's alone (see package safedir).
func Tree(dir string) safedir.Tree {
	return safedir.Runtime(filepath.Dir(filepath.Clean(dir)))
}

// Begin starts a new transaction in dir, replacing any earlier journal,
// and writes its begin record. verb is "up" or "down"; steps is the plan's
// length. If the begin record cannot be written (a full disk), there is
// no journal.
func Begin(dir, verb string, steps int) (*Writer, error) {
	d, err := Tree(dir).OpenDir(dir, true)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	f, err := d.OpenFile(FileName, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	w := &Writer{f: f, dir: dir}
	now := time.Now().UTC()
	if err := w.write(record{Rec: recBegin, Format: Format, Verb: verb, Pid: os.Getpid(), Time: &now, Steps: steps}); err != nil {
		f.Close()
		return nil, errors.Join(err, Remove(dir))
	}
	return w, nil
}

// Append reopens an unfinished transaction's journal, for recovery to
// record its progress in, so that a crash during recovery is recovered in
// turn.
func Append(dir string) (*Writer, error) {
	d, err := Tree(dir).OpenDir(dir, false)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	f, err := d.OpenFile(FileName, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	// A crash may have torn the last line: cut it, so that the records
	// appended now start on a line of their own.
	size := int64(bytes.LastIndexByte(data, '\n') + 1)
	if size != int64(len(data)) {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	return &Writer{f: f, dir: dir, size: size}, nil
}

// write appends records, in writes of at most writeRound records. A
// write that fails (a full disk) may have left part of a record: the file
// is cut back to the end of the last whole one, and the writer writes no
// more, so that the journal stays a true, if short, account that recovery
// reads: the steps it lists may be in effect, and undoing them again is
// safe. A run's steps start only once all their records are written, so
// that several writes stand for one as a torn write does.
func (w *Writer) write(rs ...record) error {
	for len(rs) > 0 && w.broken == nil {
		n := min(len(rs), writeRound)
		b, err := encode(rs[:n])
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if _, err := w.f.Write(b); err != nil {
			w.broken = fmt.Errorf("journal %s: %w", w.f.Name(), err)
			if terr := w.f.Truncate(w.size); terr != nil {
				w.broken = errors.Join(w.broken, fmt.Errorf("journal %s: cut back to its last whole record: %w", w.f.Name(), terr))
			}
			return w.broken
		}
		w.size += int64(len(b))
		rs = rs[n:]
	}
	return w.broken
}

// writeRound is how many records one write holds. A down at N=5000
// starts 15,000 steps at once: encoded all before the first write, their
// records and the garbage of encoding them set the peak memory of the
// run; in rounds, one round's.
const writeRound = 256

// encode renders records as lines of JSON. A down's namespace batch
// starts with 500 records of about 700 bytes, each a namespace's rebuild:
// 5-9 ms of encoding on one core, before any namespace goes. Long runs are
// shared among the CPUs.
func encode(rs []record) ([]byte, error) {
	lines := make([][]byte, len(rs))
	errs := make([]error, len(rs))
	workers := min(runtime.GOMAXPROCS(0), len(rs)/64+1)
	part := func(w int) {
		for i := w; i < len(rs); i += workers {
			lines[i], errs[i] = appendRecord(nil, rs[i])
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { part(w) })
	}
	part(0)
	wg.Wait()
	return bytes.Join(lines, nil), errors.Join(errs...)
}

// appendRecord appends r's line to b. A step is spliced in from its own
// encoding (op.Step.AppendJSON): through json.Marshal of the record it
// was encoded, then copied and compacted once more. The fields come in
// the order json.Marshal writes them: a start record has no error.
func appendRecord(b []byte, r record) ([]byte, error) {
	s := r.Step
	if s == nil || r.Error != "" {
		m, err := json.Marshal(r)
		return append(append(b, m...), '\n'), err
	}
	r.Step = nil
	m, err := json.Marshal(r)
	if err != nil {
		return b, err
	}
	b = append(append(b, m[:len(m)-1]...), `,"step":`...)
	if b, err = s.AppendJSON(b); err != nil {
		return b, err
	}
	return append(b, "}\n"...), nil
}

// Start records that steps, numbered from i, are about to run, in one
// write: a batch of 500 namespace deletions made 500 writes before it
// could start. A crash may tear the write; the records before the tear
// stand, as separate writes would.
func (w *Writer) Start(i int, steps ...op.Step) error {
	rs := make([]record, len(steps))
	for j := range steps {
		rs[j] = record{Rec: recStart, I: i + j, Step: &steps[j]}
	}
	return w.write(rs...)
}

// Finish records how steps, numbered from i, ended (errs[j] is step
// i+j's error, nil when it is done), in one write: a run of 3000 steps
// made 3000 writes after it. A failed step changed nothing (the kernel's
// contract), so recovery leaves it alone.
func (w *Writer) Finish(i int, errs ...error) error {
	rs := make([]record, len(errs))
	for j, err := range errs {
		rs[j] = record{Rec: recDone, I: i + j}
		if err != nil {
			rs[j] = record{Rec: recFailed, I: i + j, Error: err.Error()}
		}
	}
	return w.write(rs...)
}

// Undo records that the undo of step i is about to run.
func (w *Writer) Undo(i int) error {
	return w.write(record{Rec: recUndo, I: i})
}

// Undone records how the undo of step i ended.
func (w *Writer) Undone(i int, err error) error {
	if err != nil {
		return w.write(record{Rec: recUndoFailed, I: i, Error: err.Error()})
	}
	return w.write(record{Rec: recUndone, I: i})
}

// End closes the transaction with one of the end records and closes the
// file. When the record cannot be written (a full disk, an earlier
// record that failed), the journal is removed instead: the transaction
// is over either way, and a journal without its end would say it is not.
func (w *Writer) End(rec string) error {
	err := w.write(record{Rec: rec})
	err = errors.Join(err, w.f.Close())
	if err != nil {
		if rerr := Remove(w.dir); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return nil
}

// Close closes the file without ending the transaction (it stays pending).
func (w *Writer) Close() error { return w.f.Close() }

// StepState is what the journal knows of one step.
type StepState int

// Step states, in the order a step goes through them.
const (
	// Started: the step may or may not have happened, wholly or in part.
	Started StepState = iota
	// Done: the step happened.
	Done
	// Failed: the step failed and changed nothing.
	Failed
	// Undoing: the step happened; its undo may or may not have, wholly or
	// in part.
	Undoing
	// Undone: the step's undo happened.
	Undone
	// UndoFailed: the step happened and its undo failed.
	UndoFailed
)

func (s StepState) String() string {
	return [...]string{"started", "done", "failed", "undoing", "undone", "undo-failed"}[s]
}

// Entry is one step of a pending transaction.
type Entry struct {
	Index int
	Step  op.Step
	State StepState
	// Err is the message of a failure, if any.
	Err string
}

// Pending is an unfinished transaction.
type Pending struct {
	// Format is the records' version (0 before topo wrote one).
	Format int
	Verb   string
	Pid    int
	Time   time.Time
	Steps  int // length of the plan
	// Entries are the steps that started, by index.
	Entries []Entry
}

// Done counts the steps that happened and were not undone.
func (p *Pending) Done() int {
	n := 0
	for _, e := range p.Entries {
		if e.State != Failed && e.State != Undone {
			n++
		}
	}
	return n
}

// Summary says in words what the transaction got to.
func (p *Pending) Summary() string {
	return fmt.Sprintf("an interrupted %s (pid %d, started %s) had started %d of %d steps, %d of them still in effect",
		p.Verb, p.Pid, p.Time.Local().Format(time.DateTime), len(p.Entries), p.Steps, p.Done())
}

// Read returns the unfinished transaction in dir, or nil when there is none
// (no journal, or its last transaction ended). A torn last line, as a crash
// mid-write leaves, is ignored; any other damage is an error.
func Read(dir string) (*Pending, error) {
	data, err := Tree(dir).ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return parse(filepath.Join(dir, FileName), data)
}

func parse(path string, data []byte) (*Pending, error) {
	var (
		p       *Pending
		entries = map[int]*Entry{}
		ended   bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			if last(data, sc) {
				break // torn by a crash
			}
			return nil, fmt.Errorf("journal %s:%d: %w", path, line, err)
		}
		if r.Rec == recBegin {
			if r.Format > Format {
				return nil, fmt.Errorf("journal %s:%d: format %d, written by a later topo than this one (format %d): recover it with that topo (topo up or down)", path, line, r.Format, Format)
			}
			p = &Pending{Format: r.Format, Verb: r.Verb, Pid: r.Pid, Steps: r.Steps}
			if r.Time != nil {
				p.Time = *r.Time
			}
			entries, ended = map[int]*Entry{}, false
			continue
		}
		if p == nil {
			return nil, fmt.Errorf("journal %s:%d: %q record before begin", path, line, r.Rec)
		}
		e := entries[r.I]
		switch r.Rec {
		case recStart:
			if r.Step == nil {
				return nil, fmt.Errorf("journal %s:%d: start record without its step", path, line)
			}
			entries[r.I] = &Entry{Index: r.I, Step: *r.Step, State: Started}
			continue
		case RecCommit, RecRolledBack, RecRecovered:
			ended = true
			continue
		}
		if e == nil {
			return nil, fmt.Errorf("journal %s:%d: %q record for step %d, which never started", path, line, r.Rec, r.I)
		}
		switch r.Rec {
		case recDone:
			e.State = Done
		case recFailed:
			e.State, e.Err = Failed, r.Error
		case recUndo:
			e.State = Undoing
		case recUndone:
			e.State = Undone
		case recUndoFailed:
			e.State, e.Err = UndoFailed, r.Error
		default:
			return nil, fmt.Errorf("journal %s:%d: unknown record %q", path, line, r.Rec)
		}
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if p == nil || ended {
		return nil, nil
	}
	for _, e := range entries {
		p.Entries = append(p.Entries, *e)
	}
	sort.Slice(p.Entries, func(i, j int) bool { return p.Entries[i].Index < p.Entries[j].Index })
	return p, nil
}

// last reports whether the scanner's current line is the file's last
// non-empty one.
func last(data []byte, sc *bufio.Scanner) bool {
	// The scanner has consumed through this line; what follows must be
	// blank. Find this line's end by searching for its bytes from the end.
	cur := sc.Bytes()
	i := bytes.LastIndex(data, cur)
	return i >= 0 && len(bytes.TrimSpace(data[i+len(cur):])) == 0
}

// Remove deletes the journal (after `down`, nothing of the project stays).
func Remove(dir string) error {
	return Tree(dir).Remove(filepath.Join(dir, FileName))
}
