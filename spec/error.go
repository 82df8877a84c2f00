package spec

import (
	"fmt"
	"strconv"
)

// Error is one problem in a topology file. Parse and Load return every
// problem they find at once, as an errors.Join of *Error sorted by line and
// column, so that one run shows the user everything to fix. Get them back
// with errors.As, or by unwrapping the joined error.
type Error struct {
	// Path is the file as given to Load or Parse.
	Path string
	// Pos is where the problem is. Line 0 means the problem has no place
	// in the file (the project name derived from the folder, say); Col 0
	// means only the line is known (YAML syntax errors).
	Pos Pos
	// Msg says what is wrong and what would be valid.
	Msg string
}

// Error formats the problem as FILE:LINE:COL: MSG, the form compilers use
// and editors jump to, leaving out an unknown column or line.
func (e *Error) Error() string {
	path := e.Path
	if e.Pos.File != "" {
		path = e.Pos.File
	}
	switch {
	case path == "" && e.Pos.Line <= 0:
		return e.Msg // not about the file: the count of errors left out
	case e.Pos.Line <= 0:
		return path + ": " + e.Msg
	case e.Pos.Col <= 0:
		return path + ":" + strconv.Itoa(e.Pos.Line) + ": " + e.Msg
	default:
		return fmt.Sprintf("%s:%d:%d: %s", path, e.Pos.Line, e.Pos.Col, e.Msg)
	}
}
