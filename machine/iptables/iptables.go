// Package iptables is the firewall mechanism of package machine for
// iptables, one backend of machine.Firewall: it finds the backend the
// host's rules are in (iptables-nft or iptables-legacy), reads topo's
// tables with one iptables-save, and applies each batch with one
// iptables-restore --noflush, all of it or none. coreos/go-iptables finds
// and checks the programs, gives their version, and switches the family
// (iptables or ip6tables). Fake is its in-memory counterpart.
package iptables

import (
	"context"
	"fmt"

	"github.com/topolab/topo/firewall"
)

// Tables reads and writes whole iptables tables. The real one runs
// iptables-save and iptables-restore of one backend; tests may use another.
type Tables interface {
	// Backend is "nft" or "legacy".
	Backend() string
	// Save returns `iptables-save`: every table, in one run (one process
	// costs more than the tables topo does not read).
	Save(ctx context.Context) ([]byte, error)
	// Restore feeds input to `iptables-restore --noflush`: every line of
	// it is applied, or none.
	Restore(ctx context.Context, input []byte) error
}

// applyClamping runs apply with cs, and if that fails and an insert of cs
// lies past the end of its chain of table, as save reads the tables after
// the failure (a batch is applied all or none), once more with such
// inserts at their chains' ends (see firewall.ClampInserts). The real
// tables and the fake share it, so that both put a rule back the same way.
func applyClamping(table string, cs []firewall.Change, apply func([]firewall.Change) error, save func() ([]byte, error)) error {
	err := apply(cs)
	if err == nil || !hasInsert(cs) {
		return err
	}
	saved, serr := save()
	if serr != nil {
		return err
	}
	clamped, moved := firewall.ClampInserts(cs, firewall.ChainLengths(saved, table))
	if !moved {
		return err
	}
	if cerr := apply(clamped); cerr != nil {
		return fmt.Errorf("%w (and with inserts moved to their chains' ends: %v)", err, cerr)
	}
	return nil
}

func hasInsert(cs []firewall.Change) bool {
	for _, c := range cs {
		if c.Op == firewall.Insert {
			return true
		}
	}
	return false
}
