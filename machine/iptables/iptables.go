// Package iptables is the firewall mechanism of package machine for
// iptables, one backend of machine.Firewall: it finds the backend the
// host's rules are in (iptables-nft or iptables-legacy), reads topo's
// tables with one iptables-save, and applies each batch with one
// iptables-restore --noflush, all of it or none. coreos/go-iptables finds
// and checks the programs, gives their version, and switches the family
// (iptables or ip6tables). Fake is its in-memory counterpart.
package iptables

import "context"

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
