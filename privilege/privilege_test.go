package privilege

import (
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"NET_ADMIN": "NET_ADMIN", "net_admin": "NET_ADMIN", "CAP_NET_ADMIN": "NET_ADMIN", "cap_sys_time": "SYS_TIME",
		"all": "ALL", "ALL": "ALL", "CHECKPOINT_RESTORE": "CHECKPOINT_RESTORE",
	} {
		if got, ok := Normalize(in); !ok || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "NET_ADMN", "CAP_", "CAP_ALL", "SYS_WHATEVER"} {
		if got, ok := Normalize(bad); ok {
			t.Errorf("Normalize(%q) = %q, accepted", bad, got)
		}
	}
}

// TestCaps follows moby's TweakCapabilities case by case.
func TestCaps(t *testing.T) {
	docker := []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
		"NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}
	withNetAdmin := []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
		"NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}
	for _, c := range []struct {
		name string
		s    Settings
		own  bool
		want []string
	}{
		{"default, own namespace", Settings{}, true, withNetAdmin},
		{"default, host's namespace", Settings{}, false, docker},
		{"drop and add", Settings{CapAdd: []string{"SYS_TIME"}, CapDrop: []string{"NET_ADMIN", "CHOWN"}}, true,
			[]string{"DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE",
				"NET_RAW", "SYS_CHROOT", "SYS_TIME", "MKNOD", "AUDIT_WRITE", "SETFCAP"}},
		{"drop ALL keeps only the added", Settings{CapAdd: []string{"NET_RAW"}, CapDrop: []string{"ALL"}}, true, []string{"NET_RAW"}},
		{"drop ALL alone", Settings{CapDrop: []string{"ALL"}}, true, nil},
		{"added and dropped: added wins", Settings{CapAdd: []string{"CHOWN"}, CapDrop: []string{"CHOWN"}}, false, docker},
	} {
		if got := c.s.Caps(c.own).Names(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	all := Settings{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_ADMIN"}}.Caps(true)
	if all.Count() != len(names)-1 || all.Has(number("SYS_ADMIN")) {
		t.Errorf("ALL but SYS_ADMIN: %v", all)
	}
	if p := (Settings{Privileged: true, CapDrop: []string{"ALL"}}).Caps(false); p.Count() != len(names) {
		t.Errorf("privileged: %d capabilities, want every one (%d)", p.Count(), len(names))
	}
	for _, c := range []string{"SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH"} {
		if Default.Has(number(c)) {
			t.Errorf("the default set holds %s", c)
		}
	}
	if got := Default.Known(12).Names(); slices.Contains(got, "NET_RAW") || !slices.Contains(got, "NET_BIND_SERVICE") {
		t.Errorf("Known(12) keeps %v", got)
	}
}

func TestParseUser(t *testing.T) {
	for _, ok := range []string{"nobody", "1000", "1000:1000", "www-data:adm", "_apt", "user.name", "machine$", "0:0"} {
		if msg := ParseUser(ok); msg != "" {
			t.Errorf("ParseUser(%q): %s", ok, msg)
		}
	}
	for bad, want := range map[string]string{
		"":                       "names no user",
		":1":                     "names no user",
		"root:":                  "names no group",
		"a b":                    "neither a number nor a user name",
		"-x":                     "neither a number nor a user name",
		"1000:a b":               `names group "a b", which is neither`,
		"4294967295":             "out of range",
		"1:99999999999999999999": `names group "99999999999999999999", which is out of range`,
	} {
		if msg := ParseUser(bad); !strings.Contains(msg, want) {
			t.Errorf("ParseUser(%q) = %q, want it to say %q", bad, msg, want)
		}
	}
}

func TestLookupUser(t *testing.T) {
	root, err := LookupUser("")
	if err != nil || root.UID != 0 || root.GID != 0 || root.Home == "" {
		t.Errorf("root: %+v, %v", root, err)
	}
	if u, err := user.Lookup("nobody"); err == nil {
		got, err := LookupUser("nobody")
		if err != nil || strconv.FormatUint(uint64(got.UID), 10) != u.Uid || strconv.FormatUint(uint64(got.GID), 10) != u.Gid || got.Home != u.HomeDir {
			t.Errorf("nobody: %+v, %v; the host has %+v", got, err, u)
		}
	}
	// A uid the host does not have runs as Docker runs it: gid 0, HOME=/.
	if got, err := LookupUser("4000123"); err != nil || got.UID != 4000123 || got.GID != 0 || got.Home != "/" || len(got.Groups) != 0 {
		t.Errorf("unknown uid: %+v, %v", got, err)
	}
	if got, err := LookupUser("4000123:4000124"); err != nil || got.UID != 4000123 || got.GID != 4000124 {
		t.Errorf("unknown uid:gid: %+v, %v", got, err)
	}
	if _, err := LookupUser("no-such-user-topo"); err == nil || !strings.Contains(err.Error(), "no such user in the host's /etc/passwd") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := LookupUser("0:no-such-group-topo"); err == nil || !strings.Contains(err.Error(), "no such group") {
		t.Errorf("unknown group: %v", err)
	}
}
