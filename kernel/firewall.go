package kernel

import (
	"context"
	"errors"
)

// Iptables reads and writes whole iptables tables. The real one runs
// iptables-save and iptables-restore of one backend; tests may use another.
type Iptables interface {
	// Backend is "nft" or "legacy".
	Backend() string
	// Save returns `iptables-save`: every table, in one run (one process
	// costs more than the tables topo does not read).
	Save(ctx context.Context) ([]byte, error)
	// Restore feeds input to `iptables-restore --noflush`: every line of
	// it is applied, or none.
	Restore(ctx context.Context, input []byte) error
}

// ErrNoIptables says the iptables programs are missing.
var ErrNoIptables = errors.New("the iptables programs are not installed: topo needs them for port publishing, NAT and isolation; install the Debian package iptables (apt-get install iptables)")
