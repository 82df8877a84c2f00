package names

import (
	"crypto/sha256"
	"encoding/hex"
)

// Shared iptables chains, made by the first project that needs them and
// removed with the last.
const (
	// ChainUser is evaluated first in FORWARD and never flushed by topo:
	// it is where people add their own filtering, as in Docker's DOCKER-USER.
	ChainUser      = "TOPO-USER"
	ChainInput     = "TOPO-INPUT"
	ChainIsolation = "TOPO-ISOLATION"
	ChainIngress   = "TOPO-INGRESS"
	ChainEgress    = "TOPO-EGRESS"
	// ChainPrefix starts the name of every chain topo owns.
	ChainPrefix = "TOPO-"
	// SharedComment marks the jumps into the shared chains.
	SharedComment = "topo:shared"
)

// Project chain suffixes.
const (
	SuffixIn   = "IN"
	SuffixOut  = "OUT"
	SuffixDNAT = "DNAT"
	SuffixSNAT = "SNAT"
)

// maxChainName is the longest chain name iptables accepts
// (XT_EXTENSION_MAXNAMELEN less its NUL).
const maxChainName = 28

// chainDigits is how many hex digits of sha256(project) name a project's
// chains: all that the longest, TOPO-<h>-DNAT, has room for. 72 bits: no
// two projects are expected to share them by chance, and a chain that
// holds another project's rules is refused all the same.
const chainDigits = maxChainName - len(ChainPrefix+"-"+SuffixDNAT)

// legacyChainDigits is how many digits topo used before: 32 bits, which
// project names such as p19847 and p42256 share. Chains so named are still
// the project's when their rules carry its mark, so that down and up
// remove what an earlier topo made.
const legacyChainDigits = 8

// ChainPrefixOf starts the names of a project's own chains.
func ChainPrefixOf(project string) string { return chainPrefix(project, chainDigits) }

// LegacyChainPrefixOf is ChainPrefixOf as an earlier topo named them.
func LegacyChainPrefixOf(project string) string { return chainPrefix(project, legacyChainDigits) }

func chainPrefix(project string, digits int) string {
	sum := sha256.Sum256([]byte(project))
	return ChainPrefix + hex.EncodeToString(sum[:])[:digits] + "-"
}
