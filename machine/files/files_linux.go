// Package files is the files mechanism of package machine: the
// resolv.conf and hosts of /etc/netns/NS/ that `ip netns exec` puts over
// /etc, the records of host sysctls from before topo changed them, and
// those of the sysctls topo set in namespaces. Fake is its in-memory
// counterpart.
package files

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/resolvconf"
	"github.com/topolab/topo/safedir"
)

// Kernel is the real Files, with the records of host sysctls under Runtime.
type Kernel struct {
	Runtime names.Runtime
}

var _ machine.Files = Kernel{}

// Write writes a file of /etc/netns/NS/, or a sysctl's record.
func (k Kernel) Write(o op.FileWrite) error {
	if k.isRecord(o.NS, o.Path) {
		return k.writeSysctlRecord(o.Path, o.Content)
	}
	return writeNetnsFile(o.NS, o.Path, o.Content)
}

// Remove removes a file as Write names it; a missing one is success.
func (k Kernel) Remove(o op.FileDel) error {
	if k.isRecord(o.NS, o.Path) {
		return k.tree().Remove(o.Path)
	}
	return removeNetnsFile(o.NS, o.Path)
}

// tree is the runtime root, where the records are: reached without
// following links (see package safedir).
func (k Kernel) tree() safedir.Tree { return safedir.Runtime(k.Runtime.Root) }

// isRecord says whether a file is the record of a host sysctl: the one
// kind of file outside /etc/netns that file operations write.
func (k Kernel) isRecord(ns, p string) bool {
	return ns == "" && (k.Runtime.IsSysctlRecord(p, names.HostSysctls...) || k.Runtime.IsNetnsSysctls(p))
}

// checkNetnsFile checks that p is the resolv.conf or hosts of
// /etc/netns/NS/: the only files the DNS operations may write or remove
// there.
func checkNetnsFile(ns, p string) error {
	if _, err := names.NetnsPath(ns); err != nil {
		return err
	}
	if !names.IsNetnsFile(ns, p) {
		return fmt.Errorf("file %s: not a resolv.conf or hosts of %s/%s/", p, names.NetnsEtcDir, ns)
	}
	return nil
}

// writeNetnsFile replaces a file of /etc/netns/NS/ atomically, never
// through a link (see package safedir). The temporary file is made
// beside the folder, not in it: `ip netns exec` binds every file of the
// folder over /etc. It is 0644: a command running as another user reads
// it.
//
// Equivalent to: `mkdir -p /etc/netns/NS; cat > /etc/netns/NS/FILE`
func writeNetnsFile(ns, p, content string) error {
	if err := checkNetnsFile(ns, p); err != nil {
		return err
	}
	return safedir.Netns.WriteAtomic(filepath.Join(names.NetnsEtcDir, "."+ns+"."+filepath.Base(p)+".tmp"), p, []byte(content), 0o644)
}

// writeSysctlRecord writes a record of a sysctl's value from before topo,
// root's alone (0600), atomically.
//
// Equivalent to: `mkdir -p /run/topo; (umask 077; echo VALUE > /run/topo/KEY.before)`
func (k Kernel) writeSysctlRecord(p, content string) error {
	return k.tree().WriteAtomic(p+".tmp", p, []byte(content), 0o600)
}

// removeNetnsFile removes a file of /etc/netns/NS/, and the folder once
// empty. A missing file is success.
//
// Equivalent to: `rm -f /etc/netns/NS/FILE; rmdir /etc/netns/NS`
func removeNetnsFile(ns, p string) error {
	if err := checkNetnsFile(ns, p); err != nil {
		return err
	}
	d, err := safedir.Netns.OpenDir(filepath.Dir(p), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = d.Remove(filepath.Base(p))
	d.Close()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Only when empty: what others put there stays.
	return safedir.Netns.Rmdir(filepath.Dir(p))
}

// ReadNetns reads the DNS files under /etc/netns of namespace ns (path to
// content), leaving out those missing.
func (Kernel) ReadNetns(ns string) (map[string]string, error) {
	if _, err := names.NetnsPath(ns); err != nil {
		return nil, err
	}
	d, err := safedir.Netns.OpenDir(filepath.Join(names.NetnsEtcDir, ns), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out map[string]string
	for _, base := range names.NetnsFiles {
		p := names.NetnsFile(ns, base)
		b, err := d.ReadFile(base)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if out == nil {
			out = make(map[string]string, len(names.NetnsFiles))
		}
		out[p] = string(b)
	}
	return out, nil
}

// ReadRecord reads the record of a host sysctl.
func (k Kernel) ReadRecord(key string) (string, bool, error) {
	b, err := k.tree().ReadFile(k.Runtime.SysctlRecord(key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

// ReadNetnsSysctls reads the record of the sysctls topo set in ns.
func (k Kernel) ReadNetnsSysctls(project, ns string) (string, error) {
	b, err := k.tree().ReadFile(k.Runtime.NetnsSysctls(project, ns))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// Nameservers are the IPv4 nameservers of the host's resolv.conf, which
// automatic subnets avoid as Docker's do: a network over the host's
// resolver would cut the host off from it. A missing or unreadable file
// names none.
//
// Equivalent to: `grep ^nameserver /etc/resolv.conf`
func (Kernel) Nameservers() []string { return nameservers(resolvconf.Host) }

// MachineID is the host's /etc/machine-id, from which topo derives its
// IPv6 ULA prefix (ipam.ULA); "" when it has none.
//
// Equivalent to: `cat /etc/machine-id`
func (Kernel) MachineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// nameservers are the IPv4 nameservers of the resolv.conf at path.
func nameservers(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, hp := range resolvconf.Nameservers(b) {
		host, _, err := net.SplitHostPort(hp)
		if a, perr := netip.ParseAddr(host); err == nil && perr == nil && a.Unmap().Is4() {
			out = append(out, a.Unmap().String())
		}
	}
	return out
}
