package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// maxErrors caps the list: past a hundred problems the file is not a
// topology file at all, and an alias-heavy document could otherwise repeat
// one problem thousands of times.
const maxErrors = 100

// problems collects the errors of one file, and of the files merged with
// it or included by it.
type problems struct {
	path string
	list []*Error
	seen map[Error]bool
	// rank orders the other files, in the order they were read, after
	// the first (rank 0), so that problems are listed file by file.
	rank map[string]int
}

func (p *problems) add(pos Pos, format string, args ...any) {
	p.addError(Error{Path: p.path, Pos: pos, Msg: oneLine(fmt.Sprintf(format, args...))})
}

// oneLine folds a message of several lines (a library's error, as
// yaml.v3's list of unmarshal errors) into one, so that every line of
// the joined problems starts with its file and position.
func oneLine(msg string) string {
	if !strings.Contains(msg, "\n") {
		return msg
	}
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (p *problems) addError(e Error) {
	// A value behind a YAML anchor is checked once per alias; say it once.
	if p.seen[e] {
		return
	}
	if p.seen == nil {
		p.seen = make(map[Error]bool)
	}
	p.seen[e] = true
	p.list = append(p.list, &e)
}

// err returns nil, or every problem joined, one per line, in file order.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	list := p.sorted()
	errs := make([]error, 0, len(list))
	for _, e := range list {
		errs = append(errs, e)
	}
	return Join(errs...)
}

// Join joins problems as Parse reports them, one per line: the first
// hundred, then a line that counts the rest. The planner joins what it
// finds later with it too.
func Join(errs ...error) error {
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], &Error{Msg: fmt.Sprintf("... and %d more errors", more)})
	}
	return errors.Join(errs...)
}

// sorted returns the problems in file order: file by file, then by line
// and column.
func (p *problems) sorted() []*Error {
	list := append([]*Error(nil), p.list...)
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i].Pos, list[j].Pos
		if a.File != b.File {
			return p.rank[a.File] < p.rank[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return list
}
