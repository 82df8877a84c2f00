package spec

import (
	"errors"
	"fmt"
	"sort"
)

// maxErrors caps the list: past a hundred problems the file is not a
// topology file at all, and an alias-heavy document could otherwise repeat
// one problem thousands of times.
const maxErrors = 100

// problems collects the errors of one file.
type problems struct {
	path string
	list []*Error
	seen map[Error]bool
}

func (p *problems) add(pos Pos, format string, args ...any) {
	e := Error{Path: p.path, Pos: pos, Msg: fmt.Sprintf(format, args...)}
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
	list := append([]*Error(nil), p.list...)
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i].Pos, list[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	var more int
	if len(list) > maxErrors {
		more = len(list) - maxErrors
		list = list[:maxErrors]
	}
	errs := make([]error, 0, len(list)+1)
	for _, e := range list {
		errs = append(errs, e)
	}
	if more > 0 {
		errs = append(errs, &Error{Path: p.path, Msg: fmt.Sprintf("too many problems: %d more not shown", more)})
	}
	return errors.Join(errs...)
}
