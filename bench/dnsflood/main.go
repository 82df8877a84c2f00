//go:build linux

// Command dnsflood measures topo's embedded resolver under a flood of
// names it must forward, the attack of issue 16: one container sends
// -rate queries a second, each for a new name nobody knows, while another
// asks a container's name -probe times a second. It reports, as a
// Markdown table, what the resolver held at its peak (descriptors,
// resident memory) and how fast the local name was answered meanwhile,
// for an upstream that answers at once (NXDOMAIN) and one that never
// answers, so that every forwarded query waits out its timeout: the most
// the resolver can be made to hold. Targets (DNS-BENCHMARK.md): under
// 64 MiB resident, local answers within 10 ms at the 99th percentile.
//
//	go build -o bin/topo ./cmd/topo && sudo go run ./bench/dnsflood -topo bin/topo
//
// Everything runs in a private sandbox (internal/sandbox): the topology,
// the resolver, and the fake upstream on the sandbox's 127.0.0.1:53,
// which a resolv.conf mounted over the sandbox's /etc/resolv.conf names.
// It needs root, ip and iptables.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/internal/sandbox"
)

const (
	project  = "flood"
	topology = `name: flood
networks:
  lan: {subnet: 10.99.0.0/24}
containers:
  flooder: {networks: [lan]}
  prober: {networks: [lan]}
  target: {networks: [lan]}
`
	resolverAddr = "127.0.0.11:53"
	localName    = "target."
)

type options struct {
	topo      string
	rate      int
	probe     int
	duration  time.Duration
	upstreams []string
}

func main() {
	fs := flag.NewFlagSet("dnsflood", flag.ExitOnError)
	o := options{}
	fs.StringVar(&o.topo, "topo", "", "the topo binary to measure (required)")
	fs.IntVar(&o.rate, "rate", 15000, "queries a second of unknown names, from one container")
	fs.IntVar(&o.probe, "probe", 200, "queries a second of a local name, from another container")
	fs.DurationVar(&o.duration, "time", 10*time.Second, "how long each flood lasts")
	ups := fs.String("upstream", "answers,silent", "upstreams to measure against: answers (NXDOMAIN at once), silent (never answers)")
	fs.Parse(os.Args[1:])
	o.upstreams = strings.Split(*ups, ",")
	if o.topo == "" {
		fmt.Fprintln(os.Stderr, "dnsflood: -topo is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(o.topo)
	if err != nil {
		fail(err)
	}
	o.topo = abs
	if err := sandbox.Enter(); err != nil {
		fail(err)
	}
	if err := run(o, os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "dnsflood: %v\n", err)
	os.Exit(1)
}

// result is one flood's figures.
type result struct {
	upstream                string
	sent, answered, fail    int64
	seconds                 float64
	peakFDs, baseFDs        int
	peakRSS, baseRSS        int64 // KiB
	cpu                     float64
	p50, p99, max           time.Duration
	probes, lost            int
	loadBefore, loadAfter   string
	unansweredAfterTimeouts int64
}

func run(o options, out io.Writer) error {
	if err := pointResolvConf("nameserver 127.0.0.1\n"); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "topo-dnsflood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	file := filepath.Join(work, "topo.yaml")
	if err := os.WriteFile(file, []byte(topology), 0o644); err != nil {
		return err
	}
	var results []result
	for _, up := range o.upstreams {
		r, err := flood(o, file, up)
		if err != nil {
			return fmt.Errorf("upstream %s: %w", up, err)
		}
		results = append(results, r)
	}
	version, _ := exec.Command(o.topo, "version").Output()
	fmt.Fprintf(out, "%s, %d queries/s of new unknown names from one container for %s, a local name asked %d times/s from another; %d CPUs (%s), %s.\n\n",
		strings.TrimSpace(string(version)), o.rate, o.duration, o.probe, runtime.NumCPU(), cpuModel(), runtime.Version())
	fmt.Fprintln(out, "| upstream | sent/s | answered/s | of them SERVFAIL | unanswered | peak descriptors (idle) | peak resident MiB (idle) | resolver CPU | local p50 ms | local p99 ms | local max ms | local lost | load average before → after |")
	fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range results {
		fmt.Fprintf(out, "| %s | %.0f | %.0f | %.0f%% | %d | %d (%d) | %.1f (%.1f) | %.0f%% | %.2f | %.2f | %.2f | %d of %d | %s → %s |\n",
			r.upstream, float64(r.sent)/r.seconds, float64(r.answered)/r.seconds, 100*float64(r.fail)/float64(max(r.answered, 1)),
			r.unansweredAfterTimeouts, r.peakFDs, r.baseFDs, float64(r.peakRSS)/1024, float64(r.baseRSS)/1024, 100*r.cpu,
			ms(r.p50), ms(r.p99), ms(r.max), r.lost, r.probes, r.loadBefore, r.loadAfter)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pointResolvConf makes the sandbox's /etc/resolv.conf (what the resolver
// forwards to) hold content: a file bind-mounted over it, or over what its
// link names, made first when the link points into the sandbox's own /run.
func pointResolvConf(content string) error {
	target := "/etc/resolv.conf"
	if link, err := os.Readlink(target); err == nil {
		if !filepath.IsAbs(link) {
			link = filepath.Join("/etc", link)
		}
		target = link
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(target, nil, 0o644); err != nil {
				return err
			}
		}
	}
	f, err := os.CreateTemp("", "dnsflood-resolv-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // the mount keeps it
	if _, err := f.WriteString(content); err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(f.Name(), target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over %s: %w", f.Name(), target, err)
	}
	return nil
}

// upstream starts the fake upstream on 127.0.0.1:53 and returns its stop.
func upstream(kind string) (func(), error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:53")
	if err != nil {
		return nil, err
	}
	switch kind {
	case "answers":
		srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			r := new(dns.Msg)
			w.WriteMsg(r.SetRcode(q, dns.RcodeNameError))
		})}
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		return func() { srv.Shutdown() }, nil
	case "silent":
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
		return func() { pc.Close() }, nil
	}
	pc.Close()
	return nil, fmt.Errorf("unknown upstream %q: use answers or silent", kind)
}

func flood(o options, file, kind string) (result, error) {
	r := result{upstream: kind}
	stop, err := upstream(kind)
	if err != nil {
		return r, err
	}
	defer stop()
	if out, err := exec.Command(o.topo, "up", "-f", file).CombinedOutput(); err != nil {
		return r, fmt.Errorf("topo up: %v\n%s", err, out)
	}
	defer func() {
		if out, err := exec.Command(o.topo, "down", "-f", file).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "dnsflood: topo down: %v\n%s", err, out)
		}
	}()
	pid, err := resolverPID()
	if err != nil {
		return r, err
	}
	flooder, err := udpIn("/run/netns/"+project+"-flooder", resolverAddr)
	if err != nil {
		return r, err
	}
	defer flooder.Close()
	prober, err := udpIn("/run/netns/"+project+"-prober", resolverAddr)
	if err != nil {
		return r, err
	}
	defer prober.Close()
	// Ready: the local name is answered.
	if _, err := ask(prober, 1, localName, 10*time.Second); err != nil {
		return r, fmt.Errorf("the resolver does not answer %s: %w", localName, err)
	}
	r.baseFDs, r.baseRSS = fds(pid), rss(pid, "VmRSS")
	cpu0 := cpuTime(pid)
	r.loadBefore = loadAverage()

	var sent, answered, failed atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // answers to the flood
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			flooder.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := flooder.Read(buf)
			if err != nil {
				select {
				case <-done:
					return
				default:
					continue
				}
			}
			if n >= 4 {
				answered.Add(1)
				if buf[3]&0x0F == dns.RcodeServerFailure {
					failed.Add(1)
				}
			}
		}
	}()
	floodEnd := make(chan struct{})
	go func() { // the flood, paced to the rate every millisecond
		defer wg.Done()
		start := time.Now()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		q := new(dns.Msg)
		for {
			select {
			case <-floodEnd:
				return
			case <-tick.C:
			}
			due := int64(time.Since(start).Seconds() * float64(o.rate))
			for sent.Load() < due {
				i := sent.Add(1)
				q.SetQuestion("x"+strconv.FormatInt(i, 36)+".flood.test.", dns.TypeA)
				q.Id = uint16(i)
				b, _ := q.Pack()
				flooder.Write(b) // a full buffer drops it, as a flood would see
			}
		}
	}()
	var lat []time.Duration
	go func() { // the local name, asked by another container
		defer wg.Done()
		every := time.Second / time.Duration(o.probe)
		next := time.Now()
		for id := uint16(2); ; id++ {
			select {
			case <-floodEnd:
				return
			default:
			}
			d, err := ask(prober, id, localName, time.Second)
			r.probes++
			if err != nil {
				r.lost++
			} else {
				lat = append(lat, d)
			}
			next = next.Add(every)
			time.Sleep(time.Until(next))
		}
	}()
	start := time.Now()
	for time.Since(start) < o.duration {
		r.peakFDs = max(r.peakFDs, fds(pid))
		time.Sleep(50 * time.Millisecond)
	}
	close(floodEnd)
	r.seconds = time.Since(start).Seconds()
	r.cpu = (cpuTime(pid) - cpu0) / r.seconds
	r.peakRSS = rss(pid, "VmHWM")
	r.loadAfter = loadAverage()
	// The forwarder gives up on a silent upstream after 2 s: what is not
	// answered by then never will be.
	time.Sleep(3 * time.Second)
	close(done)
	wg.Wait()
	r.sent, r.answered, r.fail = sent.Load(), answered.Load(), failed.Load()
	r.unansweredAfterTimeouts = r.sent - r.answered
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99, r.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return r, nil
}

// ask sends one query on c and waits for its answer.
func ask(c *net.UDPConn, id uint16, name string, timeout time.Duration) (time.Duration, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = id
	b, _ := q.Pack()
	start := time.Now()
	if _, err := c.Write(b); err != nil {
		return 0, err
	}
	buf := make([]byte, 1500)
	c.SetReadDeadline(start.Add(timeout))
	for {
		n, err := c.Read(buf)
		if err != nil {
			return 0, err
		}
		if n >= 12 && buf[0] == byte(id>>8) && buf[1] == byte(id) {
			if buf[3]&0x0F != dns.RcodeSuccess {
				return 0, fmt.Errorf("%s: %s", name, dns.RcodeToString[int(buf[3]&0x0F)])
			}
			return time.Since(start), nil
		}
	}
}

// udpIn opens a UDP socket connected to addr inside the namespace at path.
func udpIn(path, addr string) (*net.UDPConn, error) {
	c, err := sandbox.DialIn(path, "udp4", addr)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.UDPConn)
	conn.SetReadBuffer(4 << 20)
	conn.SetWriteBuffer(4 << 20)
	return conn, nil
}

// resolverPID finds the project's resolver among the sandbox's processes.
func resolverPID() (int, error) {
	want := []byte("resolver\x00serve\x00--dir\x00/run/topo/" + project + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(b, want) {
			return pid, nil
		}
	}
	return 0, errors.New("no resolver process")
}

func fds(pid int) int {
	es, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(es)
}

// rss reads a field of /proc/PID/status in KiB: VmRSS now, VmHWM at peak.
func rss(pid int, field string) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the process's user and system time, in seconds.
func cpuTime(pid int) float64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}
