package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine/linux"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// The kernel floor is the least work that leaves the kernel as `topo up`
// leaves it for the benchmark's topology, and its down the least that
// puts it back (issue 24): a reference for how much of topo's time is the
// kernel's. Its target is topo's own plan, made by the bench process
// before any timing (the floor measures the kernel's work, not
// planning), written as a floorTarget; the floor then runs as a process
// of its own, timed like the scripts: the bench binary again, with
// floorArg (floor_linux.go). It makes exactly what the plan's steps make
// and nothing else: no journal, no resolver, no observation, none of
// topo's runtime files. checkFloor (floorcheck.go) proves the result equal
// to topo's.

// floorTarget is what the floor makes, and how it puts things back.
type floorTarget struct {
	Sysctls    []floorSysctl    `json:"sysctls"`
	Bridges    []floorBridge    `json:"bridges"`
	Containers []floorContainer `json:"containers"`
	// Firewall is one restore input per family (iptables, ip6tables):
	// every table of the plan's firewall steps; Unfirewall undoes them.
	Firewall   []floorRestore `json:"firewall,omitempty"`
	Unfirewall []floorRestore `json:"unfirewall,omitempty"`
	Files      []floorFile    `json:"files"`
	// UTS are the containers' UTS namespaces, bound in topo's runtime
	// folder as topo keeps them.
	UTS []floorUTS `json:"uts,omitempty"`
}

// floorUTS is a UTS namespace with its names, bound at Path.
type floorUTS struct {
	Path       string `json:"path"`
	Hostname   string `json:"hostname"`
	Domainname string `json:"domainname,omitempty"`
}

// floorSysctl is a host sysctl, with the value to put back on down ("" to
// leave it: a link's key goes with its link).
type floorSysctl struct {
	Key, Value, Before string
}

type floorBridge struct {
	Name  string           `json:"name"`
	MAC   net.HardwareAddr `json:"mac"`
	MTU   int              `json:"mtu,omitempty"`
	Alias string           `json:"alias"`
	Addrs []netip.Prefix   `json:"addrs"`
}

// floorContainer is a namespace with lo marked and one veth whose peer is
// the container's interface, its addresses and routes.
type floorContainer struct {
	NS   string `json:"ns"`
	Mark string `json:"mark"`
	// The veth: Link on the host, a port of Master, Peer in NS.
	Link    string           `json:"link"`
	Master  string           `json:"master"`
	LinkMAC net.HardwareAddr `json:"link_mac,omitempty"`
	Peer    string           `json:"peer"`
	MAC     net.HardwareAddr `json:"mac"`
	MTU     int              `json:"mtu,omitempty"`
	Alias   string           `json:"alias"`
	Addrs   []netip.Prefix   `json:"addrs"`
	Routes  []floorRoute     `json:"routes"`
}

type floorRoute struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway"`
}

// floorRestore is the input of one `PROGRAM --noflush -w`.
type floorRestore struct {
	Program string `json:"program"`
	Input   string `json:"input"`
}

type floorFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// floorPlan observes this (clean) sandbox as topo does, plans file's up
// as topo does, and turns the plan into the floor's target.
func floorPlan(ctx context.Context, file string) (*floorTarget, error) {
	f, err := spec.Load(file)
	if err != nil {
		return nil, err
	}
	obs, err := observe(ctx, f.Project)
	if err != nil {
		return nil, err
	}
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		return nil, err
	}
	backend := ""
	if obs.Firewall != nil {
		backend = obs.Firewall.Backend
	}
	return floorOf(p.Steps, backend)
}

// observe is what topo observes of project, on a machine of its own.
func observe(ctx context.Context, project string) (*state.Snapshot, error) {
	m, err := linux.New(ctx, linux.Options{Runtime: names.DefaultRuntime})
	if err != nil {
		return nil, err
	}
	return m.Observe(ctx, project)
}

// floorOf turns topo's up steps into the floor's target. An operation
// the floor does not know is an error, so that a change of what topo
// makes for the benchmark cannot leave the floor making less unnoticed.
// backend is the iptables flavour topo uses ("nft", "legacy").
func floorOf(steps []op.Step, backend string) (*floorTarget, error) {
	t := &floorTarget{}
	// In the plan's order, which is the order topo makes them in.
	containers := map[string]*floorContainer{}
	var nsOrder, brOrder []string
	container := func(ns string) *floorContainer {
		c := containers[ns]
		if c == nil {
			c = &floorContainer{NS: ns}
			containers[ns] = c
			nsOrder = append(nsOrder, ns)
		}
		return c
	}
	bridges := map[string]*floorBridge{}
	restores := map[firewall.Family]*[2]strings.Builder{}
	var families []firewall.Family
	for _, s := range steps {
		switch o := s.Op.(type) {
		case op.NetnsAdd:
			container(o.NS).Mark = o.Mark.String()
		case op.BridgeAdd:
			if o.NS != "" {
				return nil, fmt.Errorf("bridge %s in namespace %s: the floor makes bridges on the host only", o.Link, o.NS)
			}
			b := &floorBridge{Name: o.Link, MAC: o.MAC, MTU: o.MTU, Alias: o.Mark.String()}
			bridges[o.Link] = b
			brOrder = append(brOrder, o.Link)
		case op.VethAdd:
			if o.NS != "" || o.Master == "" {
				return nil, fmt.Errorf("veth %s: the floor makes only a host end on a bridge", o.Link)
			}
			c := container(o.PeerNS)
			c.Link, c.Master, c.LinkMAC, c.Peer, c.MAC, c.MTU, c.Alias = o.Link, o.Master, o.LinkMAC, o.Peer, o.MAC, o.MTU, o.Mark.String()
		case op.AddrAdd:
			if o.NS == "" {
				b := bridges[o.Link]
				if b == nil {
					return nil, fmt.Errorf("address %s on %s: not a bridge of the plan", o.Addr, o.Link)
				}
				b.Addrs = append(b.Addrs, o.Addr)
				continue
			}
			c := container(o.NS)
			if o.Link != c.Peer {
				return nil, fmt.Errorf("address %s on %s in %s: the floor addresses only the veth's peer", o.Addr, o.Link, o.NS)
			}
			c.Addrs = append(c.Addrs, o.Addr)
		case op.RouteAdd:
			if o.NS == "" || o.Link != "" || o.Metric != 0 || o.Proto != 0 {
				return nil, fmt.Errorf("route %s: the floor makes only a container's route by gateway", o.Command())
			}
			c := container(o.NS)
			c.Routes = append(c.Routes, floorRoute{Dst: o.Dst, Gateway: o.Gateway})
		case op.Sysctl:
			if o.NS != "" {
				return nil, fmt.Errorf("%s: the floor sets host sysctls only", o.Command())
			}
			u, ok := undoOp[op.Sysctl](s)
			if !ok {
				return nil, fmt.Errorf("%s: no undo", o.Command())
			}
			t.Sysctls = append(t.Sysctls, floorSysctl{Key: o.Key, Value: o.Value, Before: u.Value})
		case op.FirewallBatch:
			u, ok := undoOp[op.FirewallBatch](s)
			if !ok {
				return nil, fmt.Errorf("%s: no undo", s.Headline())
			}
			r := restores[o.Family]
			if r == nil {
				r = &[2]strings.Builder{}
				restores[o.Family] = r
				families = append(families, o.Family)
			}
			r[0].Write(firewall.RestoreInput(o.Table, o.Changes))
			// Undone in reverse, as the applier would.
			undo := string(firewall.RestoreInput(u.Table, u.Changes))
			prev := r[1].String()
			r[1].Reset()
			r[1].WriteString(undo + prev)
		case op.FileWrite:
			if o.NS == "" {
				continue // topo's runtime record of a sysctl: topo's own file
			}
			t.Files = append(t.Files, floorFile{Path: o.Path, Content: o.Content})
		case op.RecordsWrite, op.ResolverStart:
			continue // the resolver: deliberately not the floor's
		case op.UTSAdd:
			// A container's hostname: a namespace of the kernel, bound
			// in topo's runtime folder, which the floor makes too.
			t.UTS = append(t.UTS, floorUTS{Path: o.Path, Hostname: o.Hostname, Domainname: o.Domainname})
		default:
			return nil, fmt.Errorf("%s: an operation the floor does not make (bench/floor.go)", s.Headline())
		}
	}
	for _, name := range brOrder {
		t.Bridges = append(t.Bridges, *bridges[name])
	}
	for i, sc := range t.Sysctls {
		if linkSysctl(sc.Key, bridges) {
			t.Sysctls[i].Before = "" // goes with the bridge
		}
	}
	for _, ns := range nsOrder {
		c := containers[ns]
		if c.Link == "" || c.Mark == "" {
			return nil, fmt.Errorf("namespace %s: the floor needs a namespace and one veth per container", c.NS)
		}
		t.Containers = append(t.Containers, *c)
	}
	for _, f := range families {
		prog := f.Program() + "-restore"
		if backend != "" {
			prog = f.Program() + "-" + backend + "-restore"
		}
		t.Firewall = append(t.Firewall, floorRestore{Program: prog, Input: restores[f][0].String()})
		t.Unfirewall = append(t.Unfirewall, floorRestore{Program: prog, Input: restores[f][1].String()})
	}
	return t, nil
}

// undoOp is the operation of s's undo, when it is a T.
func undoOp[T op.Operation](s op.Step) (T, bool) {
	var zero T
	if s.Undo == nil {
		return zero, false
	}
	u, ok := s.Undo.Op.(T)
	return u, ok
}

// linkSysctl says whether key is a setting of one of the bridges, which
// goes with it.
func linkSysctl(key string, bridges map[string]*floorBridge) bool {
	for name := range bridges {
		if strings.HasSuffix(strings.TrimSuffix(key, "."+lastPart(key)), ".conf."+name) {
			return true
		}
	}
	return false
}

func lastPart(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// writeFloorTarget plans file's up and writes the floor's target beside
// it.
func writeFloorTarget(ctx context.Context, file string) (string, error) {
	t, err := floorPlan(ctx, file)
	if err != nil {
		return "", fmt.Errorf("the kernel floor's target: %w", err)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	p := strings.TrimSuffix(file, filepath.Ext(file)) + ".floor.json"
	return p, os.WriteFile(p, b, 0o644)
}

func readFloorTarget(path string) (*floorTarget, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := &floorTarget{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(t.Containers) == 0 {
		return nil, errors.New(path + ": no containers")
	}
	return t, nil
}
