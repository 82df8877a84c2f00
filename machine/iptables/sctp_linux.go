package iptables

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/state"
)

// SCTP says whether the kernel has what an SCTP publish needs: SCTP
// connection tracking, without which DNAT rewrites no SCTP port, and
// iptables' sctp match. It reads, never loads or changes anything.
//
// Equivalent to: `ls /proc/sys/net/netfilter/nf_conntrack_sctp_*;
// grep -x sctp /proc/net/ip_tables_matches`
func (k *Kernel) SCTP() *state.SCTPSupport {
	var u unix.Utsname
	release := ""
	if unix.Uname(&u) == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	return sctpSupport("/", release)
}

// sctpSupport reads the files of sctpConntrack and sctpMatch under root
// ("/" but in tests), for the kernel release named.
func sctpSupport(root, release string) *state.SCTPSupport {
	cfg := kernelConfig(root, release)
	return &state.SCTPSupport{Conntrack: sctpConntrack(root, cfg), Match: sctpMatch(root, release, cfg)}
}

// sctpConntrack: nf_conntrack makes its per-protocol sysctls in each
// namespace, SCTP's with CONFIG_NF_CT_PROTO_SCTP (built into
// nf_conntrack since Linux 5.1). When nf_conntrack is not loaded yet,
// the kernel's config says; without one, topo assumes it, as every
// distribution kernel has it.
func sctpConntrack(root string, cfg map[string]string) bool {
	dir := filepath.Join(root, "proc/sys/net/netfilter")
	if exists(filepath.Join(dir, "nf_conntrack_sctp_timeout_established")) {
		return true
	}
	if exists(filepath.Join(dir, "nf_conntrack_max")) {
		return false // nf_conntrack is there, without SCTP
	}
	if cfg != nil {
		return cfg["CONFIG_NF_CT_PROTO_SCTP"] == "y"
	}
	return true
}

// sctpMatch: a match the kernel has registered is listed in
// /proc/net/ip_tables_matches; one it can load is a module of
// /lib/modules/RELEASE, which iptables loads on first use.
func sctpMatch(root, release string, cfg map[string]string) bool {
	list, err := os.ReadFile(filepath.Join(root, "proc/net/ip_tables_matches"))
	if err == nil && hasLine(list, "sctp") {
		return true
	}
	if release != "" {
		mods := filepath.Join(root, "lib/modules", release)
		for _, f := range []string{"modules.builtin", "modules.dep"} {
			if b, err := os.ReadFile(filepath.Join(mods, f)); err == nil && bytes.Contains(b, []byte("/xt_sctp.ko")) {
				return true
			}
		}
	}
	if cfg != nil {
		// Built in, or a module that is not there to load.
		return cfg["CONFIG_NETFILTER_XT_MATCH_SCTP"] == "y"
	}
	// Listed without it, and no module to load: the kernel lacks it.
	// Nothing listed at all (x_tables not loaded yet) tells nothing.
	return err != nil
}

// kernelConfig reads the kernel's build options (/proc/config.gz, else
// /boot/config-RELEASE) as OPTION -> value, without the options not set;
// nil when neither file is there.
func kernelConfig(root, release string) map[string]string {
	var r io.Reader
	if f, err := os.Open(filepath.Join(root, "proc/config.gz")); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			r = z
		}
	}
	if r == nil && release != "" {
		if f, err := os.Open(filepath.Join(root, "boot", "config-"+release)); err == nil {
			defer f.Close()
			r = f
		}
	}
	if r == nil {
		return nil
	}
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			out[k] = v
		}
	}
	return out
}

func hasLine(b []byte, line string) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		if string(bytes.TrimSpace(l)) == line {
			return true
		}
	}
	return false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
