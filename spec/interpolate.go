package spec

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Lookup returns the value of an environment variable and whether it is
// set, as os.LookupEnv does.
type Lookup func(name string) (string, bool)

// substitute interpolates s as Compose does (its interpolation section):
// $NAME and ${NAME}; ${NAME:-default} (unset or empty) and ${NAME-default}
// (unset); ${NAME:?message} and ${NAME?message}, an error when unset (or
// empty); ${NAME:+alt} and ${NAME+alt}, alt when set (and not empty); $$
// for a literal $. Defaults nest (${A:-${B}}) and are expanded only when
// used. unset is told of every bare variable that is not set: Compose
// warns and uses the empty string.
func substitute(s string, env Lookup, unset func(name string)) (string, error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i += 2
		case i+1 < len(s) && s[i+1] == '{':
			end := closingBrace(s, i)
			if end < 0 {
				return "", fmt.Errorf("invalid interpolation %q: \"${\" is not closed by \"}\"; write $$ for a literal $", clip(s))
			}
			v, err := expand(s[i+2:end], env, unset)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		case i+1 < len(s) && isVarStart(s[i+1]):
			j := i + 1
			for j < len(s) && isVarChar(s[j]) {
				j++
			}
			b.WriteString(value(s[i+1:j], env, unset))
			i = j
		default:
			return "", fmt.Errorf("invalid interpolation %q: \"$\" must start $NAME, ${NAME...} or $$; write $$ for a literal $", clip(s))
		}
	}
	return b.String(), nil
}

// closingBrace is the index of the '}' that closes the "${" at s[i],
// counting the "${" nested in it, or -1.
func closingBrace(s string, i int) int {
	open := 0
	for ; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			open++
			i++
		case s[i] == '}':
			if open--; open == 0 {
				return i
			}
		}
	}
	return -1
}

func isVarStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isVarChar(c byte) bool  { return isVarStart(c) || c >= '0' && c <= '9' }

func value(name string, env Lookup, unset func(string)) string {
	v, ok := env(name)
	if !ok && unset != nil {
		unset(name)
	}
	return v
}

// expand evaluates the inside of one ${...}.
func expand(expr string, env Lookup, unset func(string)) (string, error) {
	n := 0
	for n < len(expr) && (n == 0 && isVarStart(expr[n]) || n > 0 && isVarChar(expr[n])) {
		n++
	}
	name, rest := expr[:n], expr[n:]
	if name == "" {
		return "", fmt.Errorf("invalid interpolation \"${%s}\": it names no variable (a name is letters, digits and '_', not starting with a digit)", clip(expr))
	}
	if rest == "" {
		return value(name, env, unset), nil
	}
	var op string
	for _, o := range []string{":-", ":?", ":+", "-", "?", "+"} {
		if strings.HasPrefix(rest, o) {
			op = o
			break
		}
	}
	if op == "" {
		return "", fmt.Errorf("invalid interpolation \"${%s}\": after the name write }, or one of :- - :? ? :+ + and a value", clip(expr))
	}
	arg := rest[len(op):]
	v, set := env(name)
	nonEmpty := set && v != ""
	switch op {
	case ":-", "-":
		if op == ":-" && !nonEmpty || !set {
			return substitute(arg, env, unset)
		}
		return v, nil
	case ":+", "+":
		if op == ":+" && nonEmpty || op == "+" && set {
			return substitute(arg, env, unset)
		}
		return "", nil
	default: // ":?", "?"
		if op == ":?" && !nonEmpty || !set {
			msg, err := substitute(arg, env, unset)
			if err != nil {
				return "", err
			}
			if msg == "" {
				return "", fmt.Errorf("required variable %s is missing a value", clip(name))
			}
			return "", fmt.Errorf("required variable %s is missing a value: %s", clip(name), clip(msg))
		}
		return v, nil
	}
}

// interpolate substitutes the variables of every value of the document
// (not its keys, as Compose), each node once however many aliases share
// it. A plain scalar that changes takes the type its new text has, so that
// `internal: ${INTERNAL:-false}` is a boolean and `- ${PORT}` a number;
// a quoted one stays a string.
func (p *parser) interpolate(root *yaml.Node, env Lookup) {
	seen := make(map[*yaml.Node]bool)
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.ScalarNode:
			v, err := substitute(n.Value, env, func(name string) {
				p.note(n, "the %q variable is not set: it is replaced by the empty string", clip(name))
			})
			if err != nil {
				p.errorf(n, "%s", err)
				return
			}
			if v != n.Value {
				n.Value = v
				if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!str" {
					n.Tag = "" // ShortTag resolves it again
				}
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.AliasNode:
			walk(n.Alias)
		default:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(root)
}
