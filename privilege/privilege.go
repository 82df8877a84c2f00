// Package privilege says with what a container's command runs: its user
// and its capabilities, from the file's user:, cap_add, cap_drop and
// privileged, as Docker and Compose read them. It holds Linux's capability
// names and numbers and Docker's default set; it is pure but for
// LookupUser, which reads the host's user database.
package privilege

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Settings are a command's privilege keys as the file gives them,
// normalised: capability names upper case without CAP_ (or ALL), sorted,
// without repeats. The zero value is Docker's default: root, with the
// default capabilities.
type Settings struct {
	// User is "NAME", "UID", "NAME:GROUP" or "UID:GID"; "" is root.
	User       string   `json:"user,omitempty"`
	CapAdd     []string `json:"cap_add,omitempty"`
	CapDrop    []string `json:"cap_drop,omitempty"`
	Privileged bool     `json:"privileged,omitempty"`
}

// Equal reports whether s and o give a command the same privileges as
// written.
func (s Settings) Equal(o Settings) bool {
	return s.User == o.User && s.Privileged == o.Privileged && slices.Equal(s.CapAdd, o.CapAdd) && slices.Equal(s.CapDrop, o.CapDrop)
}

// IsZero reports the default: no key given.
func (s Settings) IsZero() bool { return s.Equal(Settings{}) }

// All is what cap_add and cap_drop take for every capability.
const All = "ALL"

// names are Linux's capabilities by number (linux/capability.h), without
// the CAP_ prefix, up to CAP_CHECKPOINT_RESTORE (Linux 5.9).
var names = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// Names lists the capability names cap_add and cap_drop take, ALL first.
func Names() []string { return append([]string{All}, names...) }

// Normalize turns a capability as a file writes it (net_admin, CAP_NET_ADMIN,
// NET_ADMIN, all) into its name here (NET_ADMIN, ALL); ok is false for an
// unknown one.
func Normalize(s string) (name string, ok bool) {
	n := strings.ToUpper(strings.TrimSpace(s))
	if n == All {
		return All, true
	}
	n = strings.TrimPrefix(n, "CAP_")
	return n, slices.Contains(names, n)
}

// Set is a set of capabilities, bit n for capability number n.
type Set uint64

// Has reports whether s holds capability number c.
func (s Set) Has(c int) bool { return s&(1<<c) != 0 }

// Names are s's capabilities by name, in number order.
func (s Set) Names() []string {
	var out []string
	for c := range names {
		if s.Has(c) {
			out = append(out, names[c])
		}
	}
	return out
}

func (s Set) String() string { return strings.Join(s.Names(), ",") }

// Count is how many capabilities s holds.
func (s Set) Count() int { return bits.OnesCount64(uint64(s)) }

// number is a known capability's number.
func number(name string) int { return slices.Index(names, name) }

func setOf(list ...string) Set {
	var s Set
	for _, n := range list {
		if n == All {
			return allSet
		}
		s |= 1 << number(n)
	}
	return s
}

var allSet = Set(1)<<len(names) - 1

// Default is Docker's default set (moby's oci/caps/defaults.go): what a
// container's root may do to its own files, processes and sockets, and
// nothing that reaches beyond them (no CAP_SYS_ADMIN, which setns and mount
// need; no CAP_SYS_PTRACE; no module loading, raw I/O or clock setting).
var Default = setOf("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

// NetAdmin is CAP_NET_ADMIN, which a command in a namespace of its own has
// beyond Docker's default, so that a router container can configure its
// interfaces, routes and firewall.
var NetAdmin = setOf("NET_ADMIN")

// Caps is the capability set of a command with settings s, computed as
// Docker's TweakCapabilities does: privileged is every capability; with
// ALL in cap_add, every one but those dropped; with ALL in cap_drop, those
// added alone; else the base set without those dropped, with those added.
// The base is Default, plus NetAdmin when the command has a network
// namespace of its own (not network_mode: host, whose namespace is the
// host's).
func (s Settings) Caps(ownNetns bool) Set {
	base := Default
	if ownNetns {
		base |= NetAdmin
	}
	add, drop := setOf(s.CapAdd...), setOf(s.CapDrop...)
	switch {
	case s.Privileged:
		return allSet
	case slices.Contains(s.CapAdd, All):
		return allSet &^ drop
	case slices.Contains(s.CapDrop, All):
		return add
	}
	return base&^drop | add
}

// Known limits a set to the capabilities a kernel has: cap_last_cap is
// /proc/sys/kernel/cap_last_cap.
func (s Set) Known(capLastCap int) Set {
	if capLastCap+1 >= 64 {
		return s
	}
	return s & (Set(1)<<(capLastCap+1) - 1)
}

// ParseUser checks a user: value's form, NAME, UID, NAME:GROUP or UID:GID,
// and returns what is wrong with it, to follow `user "VALUE"` in a
// message, or "".
func ParseUser(u string) string {
	user, group, hasGroup := strings.Cut(u, ":")
	switch {
	case user == "":
		return "names no user: write NAME, UID, NAME:GROUP or UID:GID"
	case !hasGroup:
		return idPart(user, "user")
	case group == "":
		return "names no group after the colon"
	case idPart(user, "user") != "":
		return fmt.Sprintf("names user %q, which %s", user, idPart(user, "user"))
	case idPart(group, "group") != "":
		return fmt.Sprintf("names group %q, which %s", group, idPart(group, "group"))
	}
	return ""
}

// idPart checks one side of a user: value, a number or a name as useradd
// and groupadd take them, and says what is wrong with it, or "".
func idPart(s, what string) string {
	if isNumber(s) {
		if parseID(s) > maxID {
			return fmt.Sprintf("is out of range: %s ids go from 0 to %d", what, maxID)
		}
		return ""
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' ||
			i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.' || r == '$' && i == len(s)-1)
		if !ok {
			return fmt.Sprintf("is neither a number nor a %s name (letters, digits, '_', '-' and '.', starting with a letter or '_')", what)
		}
	}
	return ""
}

// maxID is the largest uid or gid: (uid_t)-1 means "no change" to the
// kernel.
const maxID = 1<<32 - 2

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func parseID(s string) uint64 {
	var n uint64
	for _, r := range s {
		n = n*10 + uint64(r-'0')
		if n > maxID {
			return maxID + 1
		}
	}
	return n
}
