package iptables

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Fake is an in-memory machine.Firewall: every chain of the filter and nat
// tables with all its rules, topo's or not, as iptables-save would list
// them. A batch is applied to a copy of its table, kept only if every
// change succeeds, and refused where iptables-restore refuses it (a jump
// to a missing chain, a chain deleted while referenced).
type Fake struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	// Support is what SCTP says; nil models all of it.
	Support *state.SCTPSupport
}

var _ machine.Firewall = (*Fake)(nil)

// NewFake returns a fake holding fw's rules (fw may be nil). Rules of
// built-in chains are placed at their positions when they fit.
func NewFake(fw *state.Firewall) *Fake {
	f := &Fake{tables: newFakeTables()}
	loadFirewall(f.tables, fw)
	return f
}

// SCTP is Support.
func (f *Fake) SCTP() *state.SCTPSupport { return f.Support }

// Backend is "fake".
func (f *Fake) Backend(context.Context) (string, error) { return "fake", nil }

// fakeTable is one iptables table of the fake: every chain with all its
// rules, topo's or not, as iptables-save would list them.
type fakeTable struct {
	order []string // chain names: built-ins first, then in creation order
	rules map[string][]string
	// builtin chains cannot be deleted
	builtin map[string]bool
}

func newFakeTables() map[string]*fakeTable {
	out := map[string]*fakeTable{}
	for _, name := range []string{firewall.TableFilter, firewall.TableNat} {
		t := &fakeTable{rules: map[string][]string{}, builtin: map[string]bool{}}
		for _, c := range firewall.Builtin[name] {
			t.order = append(t.order, c)
			t.rules[c] = nil
			t.builtin[c] = true
		}
		out[name] = t
	}
	return out
}

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{order: append([]string(nil), t.order...), rules: map[string][]string{}, builtin: t.builtin}
	for k, v := range t.rules {
		c.rules[k] = append([]string(nil), v...)
	}
	return c
}

// loadFirewall seeds the fake from a snapshot's firewall. Rules of
// built-in chains are placed at their positions when they fit.
func loadFirewall(tables map[string]*fakeTable, fw *state.Firewall) {
	if fw == nil {
		return
	}
	for _, st := range fw.Tables {
		t := tables[st.Name]
		if t == nil {
			continue
		}
		for _, c := range st.Chains {
			if _, ok := t.rules[c.Name]; !ok {
				t.order = append(t.order, c.Name)
			}
			var rs []string
			for _, r := range c.Rules {
				rs = append(rs, r.Spec)
			}
			t.rules[c.Name] = rs
		}
	}
}

// AddForeignRule puts a rule that topo did not write into the fake, as
// another program would: at the end of chain, made if missing.
func (f *Fake) AddForeignRule(table, chain, spec string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if _, ok := t.rules[chain]; !ok {
		t.order = append(t.order, chain)
	}
	t.rules[chain] = append(t.rules[chain], spec)
}

// save renders the fake's tables as iptables-save prints them.
func (f *Fake) save() string {
	var b strings.Builder
	for _, name := range []string{firewall.TableFilter, firewall.TableNat} {
		t := f.tables[name]
		fmt.Fprintf(&b, "*%s\n", name)
		for _, c := range t.order {
			policy := "-"
			if t.builtin[c] {
				policy = "ACCEPT"
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c, policy)
		}
		for _, c := range t.order {
			for _, r := range t.rules[c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// Observe is what the real mechanism's observation keeps of the fake's
// tables.
func (f *Fake) Observe(context.Context) (*state.Firewall, error) {
	f.mu.Lock()
	saved := f.save()
	f.mu.Unlock()
	tables, err := firewall.ParseSave([]byte(saved))
	if err != nil {
		return nil, err
	}
	return &state.Firewall{Backend: "fake", Tables: tables}, nil
}

// Apply applies a batch's changes in order, all or none, rejecting what
// iptables-restore rejects.
func (f *Fake) Apply(_ context.Context, o op.FirewallBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tables[o.Table] == nil {
		return fmt.Errorf("table %q: %w", o.Table, machine.ErrNotExist)
	}
	return applyClamping(o.Table, o.Changes, func(cs []firewall.Change) error {
		t := f.tables[o.Table].clone()
		for i, c := range cs {
			if err := t.apply(c); err != nil {
				return fmt.Errorf("line %d (%s): %w", i+1, c.Args(), err)
			}
		}
		f.tables[o.Table] = t
		return nil
	}, func() ([]byte, error) { return []byte(f.save()), nil })
}

func (t *fakeTable) apply(c firewall.Change) error {
	rules, exists := t.rules[c.Chain]
	switch c.Op {
	case firewall.NewChain:
		if exists {
			return fmt.Errorf("chain %s: %w", c.Chain, machine.ErrExist)
		}
		t.order = append(t.order, c.Chain)
		t.rules[c.Chain] = nil
		return nil
	case firewall.DeleteChain:
		switch {
		case !exists:
			return fmt.Errorf("chain %s: %w", c.Chain, machine.ErrNotExist)
		case t.builtin[c.Chain]:
			return fmt.Errorf("chain %s is built in", c.Chain)
		case len(rules) > 0:
			return fmt.Errorf("chain %s is not empty", c.Chain)
		}
		for _, other := range t.order {
			for _, r := range t.rules[other] {
				if target(r) == c.Chain {
					return fmt.Errorf("chain %s is referenced by %s", c.Chain, other)
				}
			}
		}
		delete(t.rules, c.Chain)
		for i, n := range t.order {
			if n == c.Chain {
				t.order = append(t.order[:i], t.order[i+1:]...)
				break
			}
		}
		return nil
	}
	if !exists {
		return fmt.Errorf("chain %s: %w", c.Chain, machine.ErrNotExist)
	}
	switch c.Op {
	case firewall.Flush:
		t.rules[c.Chain] = nil
		return nil
	case firewall.Append, firewall.Insert:
		if tg := target(c.Spec); strings.HasPrefix(tg, names.ChainPrefix) {
			if _, ok := t.rules[tg]; !ok {
				return fmt.Errorf("jump target %s: %w", tg, machine.ErrNotExist)
			}
		}
		if c.Op == firewall.Append {
			t.rules[c.Chain] = append(rules, c.Spec)
			return nil
		}
		if c.Pos < 1 || c.Pos > len(rules)+1 {
			return fmt.Errorf("index of insertion %d too big", c.Pos)
		}
		out := append([]string(nil), rules[:c.Pos-1]...)
		out = append(out, c.Spec)
		t.rules[c.Chain] = append(out, rules[c.Pos-1:]...)
		return nil
	case firewall.Delete:
		for i, r := range rules {
			if r == c.Spec {
				t.rules[c.Chain] = append(rules[:i:i], rules[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("bad rule (does a matching rule exist in that chain?): %w", machine.ErrNotExist)
	}
	return fmt.Errorf("unknown iptables option %s", c.Op)
}

// target is a rule's -j argument.
func target(spec string) string {
	_, after, ok := strings.Cut(spec, "-j ")
	if !ok {
		return ""
	}
	tg, _, _ := strings.Cut(after, " ")
	return tg
}

// Save returns the fake's rules as `iptables-save` prints them, without
// counters or comments.
func (f *Fake) Save() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.save()
}
