package firewall

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Verb is what a Change does; its text is the iptables option.
type Verb uint8

// Verbs.
const (
	NewChain    Verb = iota + 1 // -N
	Flush                       // -F
	DeleteChain                 // -X
	Append                      // -A
	Insert                      // -I
	Delete                      // -D
)

var verbOptions = [...]string{NewChain: "-N", Flush: "-F", DeleteChain: "-X", Append: "-A", Insert: "-I", Delete: "-D"}

func (v Verb) String() string {
	if int(v) < len(verbOptions) && verbOptions[v] != "" {
		return verbOptions[v]
	}
	return fmt.Sprintf("Verb(%d)", uint8(v))
}

// MarshalText writes the verb as its iptables option, "-A".
func (v Verb) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads an iptables option as MarshalText writes it.
func (v *Verb) UnmarshalText(b []byte) error {
	for i, o := range verbOptions {
		if o != "" && o == string(b) {
			*v = Verb(i)
			return nil
		}
	}
	return fmt.Errorf("unknown iptables option %q", b)
}

// Change is one iptables command within a table: create, flush or delete
// a chain, append, insert or delete a rule. It is plain data, carried by a
// plan step.
type Change struct {
	// Op is the iptables option: -N, -F, -X, -A, -I or -D.
	Op    Verb   `json:"op"`
	Chain string `json:"chain"`
	// Pos is the 1-based position of an insert, or the position a deleted
	// rule had, so that its inverse puts it back there.
	Pos  int    `json:"pos,omitempty"`
	Spec string `json:"spec,omitempty"`
	// Flushed are the rules a flush removes, in order, for its inverse.
	// A chain that goes entirely is flushed rather than emptied rule by
	// rule: iptables-nft deletes a rule by spec in time linear in the
	// chain, which makes one -D per rule quadratic.
	Flushed []string `json:"flushed,omitempty"`
}

// Args renders the change as iptables arguments, as in an
// iptables-restore file: "-A CHAIN SPEC", "-I CHAIN 2 SPEC", "-N CHAIN".
func (c Change) Args() string {
	switch c.Op {
	case NewChain, DeleteChain, Flush:
		return c.Op.String() + " " + c.Chain
	case Insert:
		return fmt.Sprintf("-I %s %d %s", c.Chain, c.Pos, c.Spec)
	}
	return c.Op.String() + " " + c.Chain + " " + c.Spec
}

// Adds reports whether the change adds something (a chain or a rule).
func (c Change) Adds() bool { return c.Op == NewChain || c.Op == Append || c.Op == Insert }

// Inverse returns the change that undoes c; a flush's is one append per
// flushed rule, which Invert gives.
func (c Change) Inverse() Change {
	switch c.Op {
	case NewChain:
		return Change{Op: DeleteChain, Chain: c.Chain}
	case DeleteChain:
		return Change{Op: NewChain, Chain: c.Chain}
	case Delete:
		if c.Pos > 0 {
			return Change{Op: Insert, Chain: c.Chain, Pos: c.Pos, Spec: c.Spec}
		}
		return Change{Op: Append, Chain: c.Chain, Spec: c.Spec}
	}
	return Change{Op: Delete, Chain: c.Chain, Pos: c.Pos, Spec: c.Spec}
}

// Invert returns the changes that undo cs, applied in order after cs.
func Invert(cs []Change) []Change {
	// A chain the batch makes is flushed and deleted as a whole, not
	// emptied rule by rule (see Flushed).
	made := map[string]*Change{}
	for _, c := range cs {
		if c.Op == NewChain {
			made[c.Chain] = &Change{Op: Flush, Chain: c.Chain}
		}
		if f := made[c.Chain]; f != nil && (c.Op == Append || c.Op == Insert) {
			f.Flushed = append(f.Flushed, c.Spec) // order is only for show
		}
	}
	out := make([]Change, 0, len(cs))
	var flushes, removes []Change // after everything else: chains refer to each other
	for i := len(cs) - 1; i >= 0; i-- {
		if f := made[cs[i].Chain]; f != nil {
			switch cs[i].Op {
			case Append, Insert:
				continue
			case NewChain:
				if len(f.Flushed) > 0 {
					flushes = append(flushes, *f)
				}
				removes = append(removes, cs[i].Inverse())
				continue
			}
		}
		if cs[i].Op == Flush {
			for _, r := range cs[i].Flushed {
				out = append(out, Change{Op: Append, Chain: cs[i].Chain, Spec: r})
			}
			continue
		}
		out = append(out, cs[i].Inverse())
	}
	out = append(out, flushes...)
	return append(out, removes...)
}

// TableChanges are the changes of one table, applied as one batch.
type TableChanges struct {
	Table   string
	Changes []Change
}

// Comment returns the comment of a rule spec (what `--comment "..."`
// quotes), or "". Plans read the comment of every rule they see, once or
// more: a regular expression made it a fifth of planning a down
// (BenchmarkPlanDown).
func Comment(spec string) string {
	const flag = `--comment "`
	i := strings.Index(spec, flag)
	if i < 0 {
		return ""
	}
	rest := spec[i+len(flag):]
	end := strings.IndexByte(rest, '"')
	if end < 0 {
		return ""
	}
	return rest[:end]
}

// projectOf returns the project named by a rule's comment, or "".
func projectOf(spec string) string {
	if mk, ok := names.ParseMark(Comment(spec)); ok {
		return mk.Project
	}
	return ""
}

// OthersPresent reports whether another project has rules in the shared
// chains, which must then stay.
func OthersPresent(have *state.Firewall, project string) bool {
	for _, t := range haveTables(have) {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if p := projectOf(r.Spec); p != "" && p != project {
					return true
				}
			}
		}
	}
	return false
}

func haveTables(f *state.Firewall) []state.FwTable {
	if f == nil {
		return nil
	}
	return f.Tables
}

// Diff returns, per table, the changes that turn the project's part of
// have into want (as Generate makes it). Only the project's own chains,
// its jumps and the shared chains are looked at: rules of other projects
// and other programs are never touched, and TOPO-USER's rules never.
// Within a table the order is: new chains, rule deletions (from the last
// position up), rule additions, chain deletions.
func Diff(project string, want, have *state.Firewall) []TableChanges {
	wantShared := want.Table(TableFilter).Chain(names.ChainUser) != nil
	if !wantShared && OthersPresent(have, project) {
		wantShared = true
		w := &state.Firewall{Tables: []state.FwTable{{Name: TableFilter}}}
		if want != nil {
			w.Tables = append([]state.FwTable(nil), want.Tables...)
			if w.Table(TableFilter) == nil {
				w.Tables = append([]state.FwTable{{Name: TableFilter}}, w.Tables...)
			}
		}
		ft := w.Table(TableFilter)
		shared := Shared()
		for _, name := range perProject {
			shared = append(shared, state.FwChain{Name: name})
		}
		ft.Chains = append(shared, ft.Chains...)
		want = w
	}
	var out []TableChanges
	for _, table := range []string{TableFilter, TableNat} {
		cs := diffTable(project, table, want.Table(table), have.Table(table), wantShared)
		if len(cs) > 0 {
			out = append(out, TableChanges{Table: table, Changes: cs})
		}
	}
	return out
}

// jumpTarget is the chain or target a rule spec jumps to, or "".
func jumpTarget(spec string) string {
	i := strings.LastIndex(spec, "-j ")
	if i < 0 {
		return ""
	}
	t, _, _ := strings.Cut(spec[i+len("-j "):], " ")
	return t
}

// othersIn lists, for each chain of the table named as one of project's
// (projectChains), the other projects whose rules are in it or jump to
// it: then the name is theirs too, and the chain is not the project's to
// flush or delete.
func othersIn(project string, own map[string]bool, t *state.FwTable) map[string][]string {
	out := map[string][]string{}
	add := func(chain, p string) {
		if p != "" && p != project && !slices.Contains(out[chain], p) {
			out[chain] = append(out[chain], p)
		}
	}
	if t == nil {
		return out
	}
	for _, c := range t.Chains {
		isOwn := own[c.Name]
		for _, r := range c.Rules {
			switch {
			case isOwn:
				add(c.Name, projectOf(r.Spec))
			case own[jumpTarget(r.Spec)]:
				add(jumpTarget(r.Spec), projectOf(r.Spec))
			}
		}
	}
	return out
}

// Conflicts reports each chain that has the name topo gives one of the
// project's chains but that another project's rules are in or jump to:
// two projects whose chain names collide. Making such a chain the
// project's would delete the other's rules, so up refuses before its
// first step.
func Conflicts(project string, have *state.Firewall) []error {
	own := projectChains(project)
	pre := names.ChainPrefixOf(project)
	var errs []error
	for _, table := range []string{TableFilter, TableNat} {
		t := have.Table(table)
		others := othersIn(project, own, t)
		for _, suffix := range []string{names.SuffixIn, names.SuffixOut, names.SuffixDNAT, names.SuffixSNAT} {
			name := pre + suffix
			if ps := others[name]; len(ps) > 0 {
				errs = append(errs, fmt.Errorf("project %s: firewall chain %s (table %s) has the name of one of project %s's chains, but rules of project %s are in it or jump to it (iptables -t %s -S): the two projects' chain names collide, and topo never changes another project's rules; bring project %s down first, or rename one of the two",
					project, name, table, project, strings.Join(ps, ", "), table, ps[0]))
			}
		}
	}
	return errs
}

func diffTable(project, table string, want, have *state.FwTable, wantShared bool) []Change {
	own := projectChains(project)
	var creates, deletes, adds, removes []Change
	wantNames := map[string]bool{}
	var wantChains []state.FwChain
	if want != nil {
		wantChains = want.Chains
	}
	if !wantShared && table == TableFilter {
		// The shared chains go with the last project, but TOPO-USER and
		// its jump stay while they hold the user's rules.
		if u := have.Chain(names.ChainUser); u != nil && len(u.Rules) > 0 {
			wantChains = append([]state.FwChain{{Name: "FORWARD", Builtin: true, Rules: []state.FwRule{sharedJump(names.ChainUser)}}, {Name: names.ChainUser}}, wantChains...)
		}
	}
	for _, c := range wantChains {
		wantNames[c.Name] = true
		hc := have.Chain(c.Name)
		switch {
		case c.Builtin:
			d, a := diffBuiltin(project, table, c, hc)
			deletes, adds = append(deletes, d...), append(adds, a...)
		case c.Name == names.ChainUser:
			if hc == nil {
				creates = append(creates, Change{Op: NewChain, Chain: c.Name})
			}
		case isPerProject(c.Name):
			if hc == nil {
				creates = append(creates, Change{Op: NewChain, Chain: c.Name})
			}
			d, a := diffShared(project, c, hc)
			deletes, adds = append(deletes, d...), append(adds, a...)
		default:
			if hc == nil {
				creates = append(creates, Change{Op: NewChain, Chain: c.Name})
				hc = &state.FwChain{Name: c.Name}
			}
			d, a := diffOrdered(c, hc)
			deletes, adds = append(deletes, d...), append(adds, a...)
		}
	}
	if have == nil {
		return concat(creates, deletes, adds, removes)
	}
	others := othersIn(project, own, have)
	for _, hc := range have.Chains {
		if wantNames[hc.Name] {
			continue
		}
		// A chain with the project's name (or the name an earlier topo
		// gave it) is the project's unless another project uses it too;
		// then only the project's own rules go.
		named := own[hc.Name]
		switch {
		case hc.Builtin:
			d, _ := diffBuiltin(project, table, state.FwChain{Name: hc.Name, Builtin: true}, &hc)
			deletes = append(deletes, d...)
		case named && len(others[hc.Name]) > 0:
			d, _ := diffShared(project, state.FwChain{Name: hc.Name}, &hc)
			deletes = append(deletes, d...)
		case named:
			if len(hc.Rules) > 0 {
				f := Change{Op: Flush, Chain: hc.Name}
				for _, r := range hc.Rules {
					f.Flushed = append(f.Flushed, r.Spec)
				}
				deletes = append(deletes, f)
			}
			removes = append(removes, Change{Op: DeleteChain, Chain: hc.Name})
		case !wantShared && isPerProject(hc.Name):
			d, _ := diffShared(project, state.FwChain{Name: hc.Name}, &hc)
			deletes = append(deletes, d...)
			if len(d) == len(hc.Rules) {
				removes = append(removes, Change{Op: DeleteChain, Chain: hc.Name})
			}
		case !wantShared && hc.Name == names.ChainUser && len(hc.Rules) == 0:
			removes = append(removes, Change{Op: DeleteChain, Chain: hc.Name})
		case hc.Name != names.ChainUser && !isPerProject(hc.Name):
			// Another project's chain: the project's rules in it (two
			// projects whose names collided) go, nothing else.
			d, _ := diffShared(project, state.FwChain{Name: hc.Name}, &hc)
			deletes = append(deletes, d...)
		}
	}
	return concat(creates, deletes, adds, removes)
}

func concat(parts ...[]Change) []Change {
	var out []Change
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// diffOrdered makes a chain that topo owns entirely hold exactly want's
// rules in want's order: rules that are in order stay, the others are
// deleted, and the missing ones inserted where they belong.
func diffOrdered(want state.FwChain, have *state.FwChain) (deletes, adds []Change) {
	keptHave := make([]bool, len(have.Rules))
	keptWant := make([]bool, len(want.Rules))
	j := 0
	for i, h := range have.Rules {
		for k := j; k < len(want.Rules); k++ {
			if want.Rules[k].Spec == h.Spec {
				keptHave[i], keptWant[k], j = true, true, k+1
				break
			}
		}
	}
	n := 0
	for i := len(have.Rules) - 1; i >= 0; i-- {
		if keptHave[i] {
			n++
			continue
		}
		deletes = append(deletes, Change{Op: Delete, Chain: have.Name, Pos: i + 1, Spec: have.Rules[i].Spec})
	}
	for k, w := range want.Rules {
		if keptWant[k] {
			continue
		}
		if k == n {
			adds = append(adds, Change{Op: Append, Chain: want.Name, Spec: w.Spec})
		} else {
			adds = append(adds, Change{Op: Insert, Chain: want.Name, Pos: k + 1, Spec: w.Spec})
		}
		n++
	}
	return deletes, adds
}

// diffShared handles a shared chain whose rules are per-project jumps in
// no particular order: only the project's own rules are compared.
func diffShared(project string, want state.FwChain, have *state.FwChain) (deletes, adds []Change) {
	wanted := map[string]bool{}
	for _, r := range want.Rules {
		wanted[r.Spec] = true
	}
	present := map[string]bool{}
	if have != nil {
		for i := len(have.Rules) - 1; i >= 0; i-- {
			r := have.Rules[i]
			if projectOf(r.Spec) != project {
				continue
			}
			if wanted[r.Spec] && !present[r.Spec] {
				present[r.Spec] = true
				continue
			}
			deletes = append(deletes, Change{Op: Delete, Chain: have.Name, Pos: i + 1, Spec: r.Spec})
		}
	}
	for _, r := range want.Rules {
		if !present[r.Spec] {
			adds = append(adds, Change{Op: Append, Chain: want.Name, Spec: r.Spec})
			present[r.Spec] = true
		}
	}
	return deletes, adds
}

// diffBuiltin handles topo's rules in a built-in chain: the shared jumps
// (which FORWARD holds first, in order, so that TOPO-USER is evaluated
// before anything) and the project's own jumps (appended). Other rules
// are not in have and are never touched, but their positions count.
func diffBuiltin(project, table string, want state.FwChain, have *state.FwChain) (deletes, adds []Change) {
	ours := func(spec string) bool {
		return Comment(spec) == names.SharedComment || projectOf(spec) == project
	}
	type held struct {
		pos  int
		spec string
	}
	var hs []held
	if have != nil {
		for i, r := range have.Rules {
			if ours(r.Spec) {
				pos := r.Pos
				if pos == 0 {
					pos = i + 1
				}
				hs = append(hs, held{pos, r.Spec})
			}
		}
	}
	// Keep what is in want's order; delete the rest, last first.
	keep := make([]bool, len(hs))
	keptWant := make([]int, len(want.Rules)) // index into hs, or -1
	for k := range keptWant {
		keptWant[k] = -1
	}
	j := 0
	for i, h := range hs {
		for k := j; k < len(want.Rules); k++ {
			if want.Rules[k].Spec == h.spec {
				keep[i], keptWant[k], j = true, i, k+1
				break
			}
		}
	}
	for i := len(hs) - 1; i >= 0; i-- {
		if keep[i] {
			continue
		}
		deletes = append(deletes, Change{Op: Delete, Chain: want.Name, Pos: hs[i].pos, Spec: hs[i].spec})
		for x := range hs {
			if hs[x].pos > hs[i].pos {
				hs[x].pos--
			}
		}
	}
	prev := 0 // position of the last wanted rule in place
	for k, w := range want.Rules {
		if i := keptWant[k]; i >= 0 {
			prev = hs[i].pos
			continue
		}
		if Comment(w.Spec) != names.SharedComment {
			adds = append(adds, Change{Op: Append, Chain: want.Name, Spec: w.Spec})
			continue
		}
		pos := prev + 1
		adds = append(adds, Change{Op: Insert, Chain: want.Name, Pos: pos, Spec: w.Spec})
		for x := range hs {
			if hs[x].pos >= pos {
				hs[x].pos++
			}
		}
		prev = pos
	}
	return deletes, adds
}

// RestoreInput renders changes as the input of `iptables-restore --noflush`
// for one table: applied all at once, or not at all.
func RestoreInput(table string, cs []Change) []byte {
	b := make([]byte, 0, 64*len(cs)+32)
	b = append(b, '*')
	b = append(b, table...)
	b = append(b, '\n')
	for _, c := range cs {
		b = append(b, c.Args()...)
		b = append(b, '\n')
	}
	return append(b, "COMMIT\n"...)
}

// Command renders a change as the iptables (or ip6tables) command a
// person would type.
func Command(f Family, table string, c Change) string {
	return f.Program() + " -t " + table + " " + c.Args()
}

// Part returns project's part of f, as Diff looks at it: the project's own
// chains, and the shared and built-in chains with only the project's rules
// and the shared jumps (TOPO-INPUT and TOPO-ISOLATION hold each project's
// drops directly). Diff of two parts compares two observations
// of one project, whatever other projects did meanwhile.
func Part(f *state.Firewall, project string) *state.Firewall {
	if f == nil {
		return nil
	}
	own := projectChains(project)
	out := &state.Firewall{Backend: f.Backend}
	for _, t := range f.Tables {
		pt := state.FwTable{Name: t.Name}
		for _, c := range t.Chains {
			switch {
			case own[c.Name], c.Name == names.ChainUser:
				pt.Chains = append(pt.Chains, c)
			case c.Builtin, c.Name == names.ChainIngress, c.Name == names.ChainEgress,
				c.Name == names.ChainInput, c.Name == names.ChainIsolation:
				pc := state.FwChain{Name: c.Name, Builtin: c.Builtin}
				for _, r := range c.Rules {
					if Comment(r.Spec) == names.SharedComment || projectOf(r.Spec) == project {
						pc.Rules = append(pc.Rules, r)
					}
				}
				pt.Chains = append(pt.Chains, pc)
			}
		}
		out.Tables = append(out.Tables, pt)
	}
	return out
}
