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

// maxAliasValues bounds how many values aliases may add to a document
// once expanded. yaml.v3 keeps aliases as pointers, so parsing is cheap,
// but walking a "billion laughs" document would not be. Real files share a
// few port lists or settings; a hundred thousand values is far more.
const maxAliasValues = 100_000

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
	// is one document, and a second one usually means a pasted second file.
	// Empty documents (a trailing "---") are harmless.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			pr.add(yamlErrorPos(err, data), "invalid YAML: %s", yamlErrorMsg(err))
			return nil
		}
		if !isEmptyDoc(&next) {
			pr.add(Pos{Line: next.Line, Col: next.Column}, "a second YAML document starts here: a topology file holds exactly one")
			return nil
		}
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

// isEmptyDoc reports whether a document holds nothing: no content, or one
// plain null written as nothing.
func isEmptyDoc(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return len(doc.Content) == 1 && n.Kind == yaml.ScalarNode && n.Value == "" && n.Tag == "!!null" && n.Style == 0 && n.Anchor == ""
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
		// At the end of the input the mark can be one past the last line.
		last := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			last++
		}
		return Pos{Line: max(1, min(n, last))}
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

// yamlErrorMsg strips yaml.v3's "yaml: line N: " prefix, and clips what
// it quotes of the file.
func yamlErrorMsg(err error) string {
	msg := err.Error()
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown anchor '%s' referenced", clip(m[1]))
	}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		return clip(m[2])
	}
	return clip(strings.TrimPrefix(msg, "yaml: "))
}

// checkExpansion counts the values of the document with every alias
// expanded, without expanding anything (each node's size is computed once),
// and reports documents that aliases make more than maxAliasValues larger,
// or whose anchors contain themselves. It looks at the whole document, x-*
// extensions included, so that a billion-laughs file is refused wherever
// it hides, as it would be by any tool that decodes it in full.
func checkExpansion(pr *problems, root *yaml.Node) bool {
	limit := countNodes(root) + maxAliasValues
	const inProgress = -1
	size := make(map[*yaml.Node]int)
	var loop bool
	var bad *yaml.Node // the first (innermost) node found too big
	var walk func(n *yaml.Node) int
	walk = func(n *yaml.Node) int {
		if s, ok := size[n]; ok {
			if s == inProgress {
				loop = true
				return limit + 1
			}
			return s
		}
		size[n] = inProgress
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			total = walk(n.Alias)
		}
		for _, c := range n.Content {
			if total += walk(c); total > limit {
				break
			}
		}
		if total > limit {
			total = limit + 1
			if bad == nil {
				bad = n
			}
		}
		size[n] = total
		return total
	}
	if walk(root) <= limit {
		return true
	}
	switch {
	case loop && bad.Kind == yaml.AliasNode:
		pr.add(pos(bad), "alias *%s is inside the value it refers to: an anchor cannot contain itself", clip(bad.Value))
	case loop:
		pr.add(pos(bad), "an anchor contains an alias to itself: an anchor cannot contain itself")
	default:
		pr.add(pos(bad), "aliases here make the document more than %d values larger once expanded (a \"billion laughs\" document?): topology files are small; use fewer aliases", maxAliasValues)
	}
	return false
}

// countNodes counts the nodes of the tree as written, aliases not followed.
func countNodes(root *yaml.Node) int {
	n := 0
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		stack = append(stack, top.Content...)
	}
	return n
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
			return fmt.Sprintf("%s %s", clip(n.ShortTag()), clip(n.Value))
		}
	}
	return "an unknown YAML value"
}

// pos returns a node's position.
func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// maxQuoted is the most of a bad value a message quotes, in bytes as %q
// prints it (an escaped NUL is four), "..." included.
const maxQuoted = 80

// clip shortens a value quoted back in a message, so that a hostile or
// mistaken megabyte-long scalar (or one of NUL bytes, which %q escapes)
// does not become a megabyte-long error: at most maxQuoted bytes once
// quoted, cut on a rune boundary and ending in "..." when cut.
func clip(s string) string {
	n, cut := 0, -1
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		n += len(strconv.Quote(s[i:i+size])) - 2
		if cut < 0 && n > maxQuoted-len("...") {
			cut = i
		}
		if n > maxQuoted {
			return s[:cut] + "..."
		}
		i += size
	}
	return s
}
