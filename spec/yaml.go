package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxFileSize bounds what Load reads and Parse accepts. A topology file is
// a few kilobytes; this only stops a wrong -f (a log, a disk image) from
// eating memory.
const maxFileSize = 4 << 20

// maxValues bounds the number of values in the document once every alias is
// expanded. yaml.v3 keeps aliases as pointers, so parsing is cheap, but
// walking a "billion laughs" document would not be; real files hold a few
// hundred values.
const maxValues = 1_000_000

// decode parses data as one YAML document and returns its root node, or
// nil after reporting why not.
func decode(pr *problems, data []byte) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			pr.add(Pos{}, "the file is empty: expected a mapping with networks: and containers:")
			return nil
		}
		pr.add(yamlErrorPos(err, data), "invalid YAML: %s", yamlErrorMsg(err))
		return nil
	}
	// yaml.Unmarshal would silently ignore a second document; a topology
	// is one document, and a stray "---" usually means a pasted second file.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		pr.add(yamlErrorPos(err, data), "invalid YAML: %s", yamlErrorMsg(err))
		return nil
	default:
		pr.add(Pos{Line: next.Line, Col: next.Column}, "a second YAML document starts here: a topology file holds exactly one")
		return nil
	}
	if len(doc.Content) == 0 {
		pr.add(Pos{}, "the file is empty: expected a mapping with networks: and containers:")
		return nil
	}
	root := doc.Content[0]
	if !checkExpansion(pr, root) {
		return nil
	}
	return root
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
var yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// parserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner. For these it prints the 0-based line of the construct being
// parsed (a flow list's '[', say), where for scanner errors it adds one.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlErrorPos finds the line of a yaml.v3 error. yaml.v3 gives no column,
// and a line only when it is not the first: it tests its 0-based line
// against zero. See parserProblems for the other quirk.
func yamlErrorPos(err error, data []byte) Pos {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			n++
		}
		return Pos{Line: n}
	}
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		// This one comes without a mark; find the alias in the text.
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line := bytes.Count(data[:i], []byte("\n")) + 1
			col := i - bytes.LastIndexByte(data[:i], '\n')
			return Pos{Line: line, Col: col}
		}
		return Pos{}
	}
	if strings.HasPrefix(msg, "yaml: ") && !strings.Contains(msg, "past the end of stream") {
		return Pos{Line: 1}
	}
	return Pos{}
}

// yamlErrorMsg strips yaml.v3's "yaml: line N: " prefix.
func yamlErrorMsg(err error) string {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(msg, "yaml: ")
}

// checkExpansion counts the values of the document with every alias
// expanded, without expanding anything (each node's size is computed once),
// and reports documents that expand past maxValues or whose anchors contain
// themselves. It looks at the whole document, x-* extensions included, so
// that a billion-laughs file is refused wherever it hides, as it would be
// by any tool that decodes it in full.
func checkExpansion(pr *problems, root *yaml.Node) bool {
	const inProgress = -1
	size := make(map[*yaml.Node]int)
	var loop bool
	var bad *yaml.Node // the first (innermost) node found too big
	var walk func(n *yaml.Node) int
	walk = func(n *yaml.Node) int {
		if s, ok := size[n]; ok {
			if s == inProgress {
				loop = true
				return maxValues + 1
			}
			return s
		}
		size[n] = inProgress
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			total = walk(n.Alias)
		}
		for _, c := range n.Content {
			if total += walk(c); total > maxValues {
				break
			}
		}
		if total > maxValues {
			total = maxValues + 1
			if bad == nil {
				bad = n
			}
		}
		size[n] = total
		return total
	}
	if walk(root) <= maxValues {
		return true
	}
	switch {
	case loop && bad.Kind == yaml.AliasNode:
		pr.add(pos(bad), "alias *%s is inside the value it refers to: an anchor cannot contain itself", clip(bad.Value))
	case loop:
		pr.add(pos(bad), "an anchor contains an alias to itself: an anchor cannot contain itself")
	default:
		pr.add(pos(bad), "this value expands to more than %d values through anchors and aliases (a \"billion laughs\" document?): topology files are small; use fewer aliases", maxValues)
	}
	return false
}

// describe names the kind of a YAML value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!bool":
			return fmt.Sprintf("the boolean %s", clip(n.Value))
		case "!!int", "!!float":
			return fmt.Sprintf("the number %s", clip(n.Value))
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		default:
			return fmt.Sprintf("%s %s", n.ShortTag(), clip(n.Value))
		}
	}
	return "an unknown YAML value"
}

// pos returns a node's position.
func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// clip shortens a value quoted back in a message, so that a hostile or
// mistaken megabyte-long scalar does not become a megabyte-long error.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
