package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// maxLabel is the longest DNS label (RFC 1035); container and network names
// become DNS names, and the project name becomes part of kernel object
// names and paths, so all three keep to it.
const maxLabel = 63

// maxDNSName is the longest DNS name in presentation form, without the root dot.
const maxDNSName = 253

const labelRule = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"

func isAlnum(r byte) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }

// isLabel reports whether s is [a-z0-9]([a-z0-9-]*[a-z0-9])? of at most 63
// bytes: a DNS label (RFC 1123) in the lowercase form topo stores.
func isLabel(s string) bool {
	if s == "" || len(s) > maxLabel || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDNSName reports whether s is labels joined by dots, at most 253 bytes.
// It expects s already lowercased.
func isDNSName(s string) bool {
	if s == "" || len(s) > maxDNSName {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

// isProjectName reports whether s is a project name as Compose accepts it,
// ^[a-z0-9][a-z0-9_-]*$, and short enough for topo's kernel names.
func isProjectName(s string) bool {
	if s == "" || len(s) > maxLabel || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' {
			return false
		}
	}
	return true
}

// normalizeProjectName is Compose's NormalizeProjectName: lowercase, drop
// everything but [a-z0-9_-], then drop leading '_' and '-'.
func normalizeProjectName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r < 128 && (isAlnum(byte(r)) || r == '-' || r == '_') {
			b.WriteRune(r)
		}
	}
	return strings.TrimLeft(b.String(), "_-")
}

// folderName is the name of the folder holding path, the project name when
// the file gives none, as Compose does.
func folderName(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return filepath.Base(filepath.Dir(abs))
}

// closest returns the candidate nearest to s by edit distance, if it is
// near enough to be a likely typo, else "".
func closest(s string, candidates []string) string {
	// Suggestions are for typos in small files; comparing against
	// thousands of names would make a hostile file slow to reject.
	if len(candidates) > 100 {
		return ""
	}
	best, bestD := "", 3 // at most two edits away
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > len(s)/2 { // "ab" is not a typo of "cd"
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo, and keeps hostile input cheap
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// didYouMean returns ` (did you mean "x"?)` for a near candidate, or "".
func didYouMean(s string, candidates []string) string {
	if c := closest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// quoteList renders names as "a", "b", "c", naming at most ten: a message
// is read by a person, and a hostile file could define thousands.
func quoteList(names []string) string {
	const max = 10
	q := make([]string, 0, max+1)
	for i, n := range names {
		if i == max {
			q = append(q, fmt.Sprintf("and %d more", len(names)-max))
			break
		}
		q = append(q, fmt.Sprintf("%q", clip(n)))
	}
	return strings.Join(q, ", ")
}

// CheckProjectName reports whether name is a valid project name, as
// Compose defines them: lowercase letters, digits, '-' and '_', starting
// with a letter or digit; topo adds a limit of 63 characters. The CLI uses
// it for -p, which overrides the file's name:.
func CheckProjectName(name string) error {
	if isProjectName(name) {
		return nil
	}
	msg := fmt.Sprintf("project name %q is not valid: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters", clip(name))
	if norm := normalizeProjectName(name); norm != name && isProjectName(norm) {
		msg += fmt.Sprintf(", e.g. %q", norm)
	}
	return errors.New(msg)
}

const nameRule = "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters"

// isName reports whether s is a container or network name as Compose
// accepts them ([a-zA-Z0-9._-], which its schema allows), starting with a
// letter or digit as Docker's container names do, so that no name reads
// as a flag or a relative path, and at most 63 bytes. Every kernel name
// derived from it stays valid: links are hashed to 15 bytes, a namespace
// is PROJECT-NAME (a file name under /run/netns), and marks keep ':' as
// their separator, which a name cannot hold, nor '/', which separates a
// container from a network in endpoint marks.
func isName(s string) bool {
	if s == "" || len(s) > maxLabel || !isAlnumAnyCase(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnumAnyCase(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnumAnyCase(c byte) bool { return isAlnum(c) || c >= 'A' && c <= 'Z' }

// nameMsg describes why name (of the given kind) is not a name, or is "".
func nameMsg(kind, name string) string {
	if isName(name) {
		return ""
	}
	return fmt.Sprintf("%s name %q is not valid: use %s", kind, clip(name), nameRule)
}
