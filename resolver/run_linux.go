package resolver

import (
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/topolab/topo/health"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/safedir"
)

// Run is the resolver process of one project: it serves the records
// document in dir (records.DocumentFile), loads it again on SIGHUP, and
// stops on SIGTERM or SIGINT, after which the process must exit. It
// runs the document's proxies too (proxy.go). After
// each load it writes records.StatusFile, which is how topo observes what
// the resolver serves.
func Run(dir string, up Upstream, logger *log.Logger) error {
	// Before anything else: SIGHUP's default action ends the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}

	s, err := NewServer(up, logger)
	if err != nil {
		return err
	}
	statusPath := filepath.Join(dir, records.StatusFile)
	checks := &health.Runner{File: filepath.Join(dir, records.HealthFile), Log: logger}
	// Its files are reached without following links, as topo's are.
	tree := safedir.Runtime(filepath.Dir(filepath.Clean(dir)))
	px := newProxies(logger)
	st := &records.Status{PID: os.Getpid(), Namespaces: map[string]records.NamespaceID{}}
	load := func() error {
		st.Generation++
		st.Errors = nil
		b, err := tree.ReadFile(filepath.Join(dir, records.DocumentFile))
		var d *records.Document
		if err == nil {
			d, err = records.Decode(b)
		}
		if err != nil {
			// Keep serving what was loaded before; the status says why not.
			st.Errors = append(st.Errors, err.Error())
			logger.Printf("load %d: %v", st.Generation, err)
		} else {
			FillCNI(d, dir, tree.ReadFile)
			checks.Load(d.Health)
			served, errs := s.Load(d)
			errs = append(errs, px.Load(d.Proxies)...)
			st.Hash, st.Namespaces = records.Hash(b), served
			for _, e := range errs {
				st.Errors = append(st.Errors, e.Error())
				logger.Printf("load %d: %v", st.Generation, e)
			}
			logger.Printf("load %d: %d namespaces, %d networks, records %.12s", st.Generation, len(served), len(d.Networks), st.Hash)
		}
		return records.WriteStatus(statusPath, st)
	}
	if err := load(); err != nil {
		s.Close()
		return err
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if err := load(); err != nil {
				logger.Printf("write status: %v", err)
			}
			continue
		}
		logger.Printf("%v: stopping", sig)
		// The process ends on return and the kernel closes every
		// namespace's sockets with it; closing them one by one first
		// took 20 ms of topo down's time at 500 namespaces.
		checks.Stop()
		px.Close()
		_ = tree.Remove(statusPath)
		return nil
	}
	return nil
}
