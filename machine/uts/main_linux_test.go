package uts

import (
	"fmt"
	"os"
	"testing"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/names"
)

// TestMain runs this package's tests inside private namespaces (see
// sandbox.Main): they mount UTS namespaces.
func TestMain(m *testing.M) { sandbox.Main(m) }

// TestAddSetOnKeptThread: namespaces made one after another on the one
// kept thread each keep their own names, a Set changes only its own, and
// the process's hostname stays the host's.
func TestAddSetOnKeptThread(t *testing.T) {
	sandbox.Require(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	k := Kernel{Runtime: names.DefaultRuntime}
	want := map[string]string{}
	for _, ns := range []string{"p-a", "p-b", "p-c"} {
		path := k.Runtime.UTS("p", ns)
		if err := k.Add(path, "h-"+ns, ""); err != nil {
			t.Fatalf("add %s: %v", ns, err)
		}
		t.Cleanup(func() { _ = k.Del(path) })
		want[path] = "h-" + ns
	}
	b := k.Runtime.UTS("p", "p-b")
	if err := k.Set(b, "renamed", "example"); err != nil {
		t.Fatal(err)
	}
	want[b] = "renamed"
	got, err := k.Observe("p")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("observed %+v, want %d namespaces", got, len(want))
	}
	for _, u := range got {
		if !u.Mounted || u.Hostname != want[u.Path] {
			t.Errorf("%s: %+v, want hostname %q, mounted", u.Path, u, want[u.Path])
		}
		if dom := map[bool]string{true: "example", false: ""}[u.Path == b]; u.Domainname != dom {
			t.Errorf("%s: domainname %q, want %q", u.Path, u.Domainname, dom)
		}
	}
	for range 20 { // on whichever threads the goroutines run
		if h, err := os.Hostname(); err != nil || h != host {
			t.Fatalf("the process's hostname is %q (%v), want the host's %q", h, err, host)
		}
	}
}

// BenchmarkAdd makes and removes UTS namespaces, one after another as an
// up and a down do.
//
//	go test ./machine/uts -run '^$' -bench Add -benchtime 2000x
func BenchmarkAdd(b *testing.B) {
	sandbox.Require(b)
	k := Kernel{Runtime: names.DefaultRuntime}
	var paths []string
	for i := 0; b.Loop(); i++ {
		p := k.Runtime.UTS("p", fmt.Sprintf("p-%d", i))
		if err := k.Add(p, "h", ""); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	b.StopTimer()
	for _, p := range paths {
		if err := k.Del(p); err != nil {
			b.Fatal(err)
		}
	}
}
