package firewall

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// ParseSave reads the output of `iptables-save` (one table or several) and
// keeps what is topo's: every chain named TOPO-… with all its rules, and
// from the built-in chains the rules that jump into a TOPO- chain or carry
// a "topo:" comment, with their positions. Tables are returned in the
// order they appear; a table with nothing of topo's is returned empty, so
// that the caller knows it was read.
func ParseSave(out []byte) ([]state.FwTable, error) {
	var (
		tables []state.FwTable
		cur    *state.FwTable
		counts map[string]int // rules seen per built-in chain
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			tables = append(tables, state.FwTable{Name: line[1:]})
			cur = &tables[len(tables)-1]
			counts = map[string]int{}
		case line == "COMMIT":
			cur = nil
		case cur == nil:
			return nil, fmt.Errorf("iptables-save line %d: %q outside a table", n, line)
		case line[0] == ':':
			name, _, _ := strings.Cut(line[1:], " ")
			if strings.HasPrefix(name, names.ChainPrefix) {
				cur.Chains = append(cur.Chains, state.FwChain{Name: name})
			}
		case strings.HasPrefix(line, "-A "):
			name, spec, _ := strings.Cut(line[3:], " ")
			if strings.HasPrefix(name, names.ChainPrefix) {
				c := cur.Chain(name)
				if c == nil {
					return nil, fmt.Errorf("iptables-save line %d: rule of undeclared chain %s", n, name)
				}
				c.Rules = append(c.Rules, state.FwRule{Spec: spec})
				continue
			}
			counts[name]++
			if !IsBuiltin(cur.Name, name) || !isTopoRule(spec) {
				continue
			}
			c := cur.Chain(name)
			if c == nil {
				cur.Chains = append(cur.Chains, state.FwChain{Name: name, Builtin: true})
				c = &cur.Chains[len(cur.Chains)-1]
			}
			c.Rules = append(c.Rules, state.FwRule{Pos: counts[name], Spec: spec})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for i := range tables {
		sortBuiltinFirst(&tables[i])
	}
	return tables, nil
}

// isTopoRule says whether a rule of a built-in chain is topo's.
func isTopoRule(spec string) bool {
	if strings.HasPrefix(Comment(spec), "topo:") {
		return true
	}
	_, target, ok := strings.Cut(spec, "-j ")
	return ok && strings.HasPrefix(target, names.ChainPrefix)
}

// sortBuiltinFirst puts built-in chains first, in the order iptables lists
// them, then topo's chains by name: the order of a table in a Snapshot.
func sortBuiltinFirst(t *state.FwTable) {
	var out []state.FwChain
	for _, b := range Builtin[t.Name] {
		if c := t.Chain(b); c != nil {
			out = append(out, *c)
		}
	}
	for _, c := range t.Chains {
		if !c.Builtin {
			out = append(out, c)
		}
	}
	t.Chains = out
}
