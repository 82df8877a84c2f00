package resolver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/topolab/topo/resolver/resolvconf"
)

// Forwarder sends queries to the host's upstream resolvers, from the
// namespace the resolver process runs in (the host's), one after the other:
// the next is asked when one times out, fails, or answers SERVFAIL or
// REFUSED. It re-reads the resolv.conf file when that changes, as
// DHCP clients rewrite it.
type Forwarder struct {
	// ResolvConf is read for nameserver lines; resolvconf.Host if empty.
	ResolvConf string
	// Servers, when set, are used instead of ResolvConf (host:port each).
	Servers []string
	// Timeout is per upstream and attempt.
	Timeout time.Duration

	mu      sync.Mutex
	stamp   string // size and mtime of the file last read
	servers []string
}

var _ Upstream = (*Forwarder)(nil)

// Exchange asks the upstreams in turn. Over UDP first; an answer with TC
// set is asked again over TCP, so that the handler can cut it to the
// asker's own limit.
func (f *Forwarder) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	servers, err := f.upstreamsFor(ctx)
	if err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, errors.New("no upstream resolver: the host's resolv.conf names no nameserver")
	}
	timeout := f.timeout()
	var last *dns.Msg
	var errs []error
	for _, s := range servers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := exchange(ctx, q, s, timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream %s: %w", s, err))
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		return r, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, errors.Join(errs...)
}

// timeout is the wait per upstream and attempt: Timeout, or 2 s.
func (f *Forwarder) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return 2 * time.Second
}

func exchange(ctx context.Context, q *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.DefaultMsgSize}
	r, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, q, server)
	}
	return r, err
}

// serversKey carries an asker's own upstreams in a context.
type serversKey struct{}

// WithServers makes Exchange ask servers (HOST:PORT each) instead of the
// host's: the upstreams of the asker's container (its dns:).
func WithServers(ctx context.Context, servers []string) context.Context {
	if len(servers) == 0 {
		return ctx
	}
	return context.WithValue(ctx, serversKey{}, servers)
}

// upstreamsFor is the servers ctx names (WithServers), else upstreams'.
func (f *Forwarder) upstreamsFor(ctx context.Context) ([]string, error) {
	if s, ok := ctx.Value(serversKey{}).([]string); ok {
		return s, nil
	}
	return f.upstreams()
}

// upstreams returns the servers to ask, reading resolv.conf again when its
// size or modification time changed.
func (f *Forwarder) upstreams() ([]string, error) {
	if len(f.Servers) > 0 {
		return f.Servers, nil
	}
	path := f.ResolvConf
	if path == "" {
		path = resolvconf.Host
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers: %w", err)
	}
	stamp := fmt.Sprint(st.Size(), st.ModTime().UnixNano())
	f.mu.Lock()
	defer f.mu.Unlock()
	if stamp == f.stamp {
		return f.servers, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers: %w", err)
	}
	f.servers, f.stamp = resolvconf.Nameservers(b), stamp
	return f.servers, nil
}
