package iptables

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/state"
)

// TestSCTPSupportFiles: what SCTP concludes from the files a
// kernel has, laid out under a root of the test's own: the per-namespace
// sysctls of nf_conntrack, the registered matches, the modules and the
// kernel's config, each when the one before it says nothing.
func TestSCTPSupportFiles(t *testing.T) {
	const release = "6.1.0-test"
	config := func(lines string) []byte {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		z.Write([]byte(lines))
		z.Close()
		return b.Bytes()
	}
	tests := []struct {
		name  string
		files map[string][]byte
		want  state.SCTPSupport
	}{
		{"both registered", map[string][]byte{
			"proc/sys/net/netfilter/nf_conntrack_max":                      []byte("262144\n"),
			"proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established": []byte("210\n"),
			"proc/net/ip_tables_matches":                                   []byte("conntrack\nsctp\nudp\ntcp\n"),
		}, state.SCTPSupport{Conntrack: true, Match: true}},
		{"conntrack without SCTP, match list without sctp", map[string][]byte{
			"proc/sys/net/netfilter/nf_conntrack_max": []byte("262144\n"),
			"proc/net/ip_tables_matches":              []byte("conntrack\nudp\ntcp\n"),
		}, state.SCTPSupport{}},
		{"match a loadable module", map[string][]byte{
			"proc/sys/net/netfilter/nf_conntrack_max": []byte("262144\n"),
			"proc/net/ip_tables_matches":              []byte("udp\ntcp\n"),
			"lib/modules/" + release + "/modules.dep": []byte("kernel/net/netfilter/xt_sctp.ko.xz: kernel/net/netfilter/x_tables.ko.xz\n"),
		}, state.SCTPSupport{Match: true}},
		{"nothing loaded yet: the config says", map[string][]byte{
			"proc/config.gz": config("# comment\nCONFIG_NF_CT_PROTO_SCTP=y\nCONFIG_NETFILTER_XT_MATCH_SCTP=y\n"),
		}, state.SCTPSupport{Conntrack: true, Match: true}},
		{"nothing loaded yet: the config lacks them", map[string][]byte{
			"boot/config-" + release: []byte("# CONFIG_NF_CT_PROTO_SCTP is not set\nCONFIG_NETFILTER_XT_MATCH_SCTP=m\n"),
		}, state.SCTPSupport{}},
		{"nothing to tell by: assumed", map[string][]byte{}, state.SCTPSupport{Conntrack: true, Match: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, b := range tt.files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := gocmp.Diff(&tt.want, sctpSupport(root, release)); diff != "" {
				t.Errorf("sctpSupport (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSCTPSupportHere: this kernel has SCTP conntrack and the sctp match
// built in (and no SCTP sockets), and SCTP, in the sandbox's own
// namespace, says so: the e2e test of SCTP publishes depends on it.
func TestSCTPSupportHere(t *testing.T) {
	sandbox.Require(t)
	if _, err := os.Stat("/proc/sys/net/netfilter/nf_conntrack_max"); err != nil {
		t.Skipf("nf_conntrack is not loaded here: %v", err)
	}
	got := newKernel(t).SCTP()
	_, ctErr := os.Stat("/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established")
	if got.Conntrack != (ctErr == nil) {
		t.Errorf("Conntrack = %v, but the sctp sysctls: %v", got.Conntrack, ctErr)
	}
	list, _ := os.ReadFile("/proc/net/ip_tables_matches")
	if hasLine(list, "sctp") && !got.Match {
		t.Errorf("Match = false, but ip_tables_matches lists sctp")
	}
}

// TestSCTPEndpoints reads /proc/net/sctp/eps as the sctp module prints
