package firewall

import (
	"bufio"
	"bytes"
	"strings"
)

// ChainLengths counts the rules of every chain of table in the output of
// `iptables-save`, foreign rules included.
func ChainLengths(saved []byte, table string) map[string]int {
	lens := map[string]int{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(saved))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			in = line[1:] == table
		case !in:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			lens[name] = 0 // declared before any of its rules
		case strings.HasPrefix(line, "-A "):
			name, _, _ := strings.Cut(line[3:], " ")
			lens[name]++
		}
	}
	return lens
}

// ClampInserts returns cs with every insert whose position lies past the
// end of its chain, as the chain will be when the insert runs, moved to
// the end; it reports whether it moved any. lens are the chains' lengths
// before cs, as ChainLengths reads them.
//
// An insert's position is the one a deleted rule had among the rules
// then in its chain (see Change.Pos). When others' rules around it went
// since, as the CNI bridge plugin's masquerade rules go with the
// attachments a down deletes before it fails, the position may be past
// the end, which iptables refuses ("Index of insertion too big"), and
// the rollback that puts the rule back would stop there. At the end the
// rule is as close to where it was as the chain now allows; topo's jumps
// into built-in chains match only topo's own traffic, so their order
// among others' rules does not change what they do.
func ClampInserts(cs []Change, lens map[string]int) ([]Change, bool) {
	n := make(map[string]int, len(lens))
	for k, v := range lens {
		n[k] = v
	}
	var out []Change
	for i, c := range cs {
		switch c.Op {
		case NewChain, Flush:
			n[c.Chain] = 0
		case DeleteChain:
			delete(n, c.Chain)
		case Append:
			n[c.Chain]++
		case Delete:
			n[c.Chain]--
		case Insert:
			if have, ok := n[c.Chain]; ok && c.Pos > have+1 {
				if out == nil {
					out = append([]Change(nil), cs...)
				}
				out[i].Pos = have + 1
			}
			n[c.Chain]++
		}
	}
	if out == nil {
		return cs, false
	}
	return out, true
}
