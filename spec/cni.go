package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/topolab/topo/names"
)

// CNI is a network's plugin chain (driver: cni), as CNI runtimes read a
// .conflist: the file's inline cni: mapping, or the file its config:
// names, read when the topology file is.
type CNI struct {
	// Config is the chain as a conflist in JSON (cniVersion, plugins,
	// and what else the file gave), with object keys sorted: a .conf
	// file of one plugin is made a list of it.
	Config []byte
	// File is the config file's path, "" for an inline chain.
	File string
	Pos  Pos
}

// cniListKeys are the keys of a conflist (CNI's spec, "Configuration
// format").
var cniListKeys = []string{"cniVersion", "cniVersions", "name", "disableCheck", "disableGC", "plugins"}

// cniVersions are the versions of CNI's spec topo takes: those with
// CHECK (0.4.0 on), which observation runs.
var cniVersions = []string{"0.4.0", "1.0.0", "1.1.0"}

// cni reads cni:, an inline chain or {config: FILE}.
func (p *parser) cni(nw *Network, e entry, what string) {
	what += ": cni"
	v := resolve(e.val)
	if v.Kind != yaml.MappingNode {
		p.errorf(e.val, "%s must be a plugin chain (cniVersion and plugins) or {config: FILE}, got %s", what, describe(v))
		return
	}
	c := &CNI{Pos: p.pos(e.key)}
	var list map[string]any
	at := e.val
	if entries := p.entries(v); slices.ContainsFunc(entries, func(x entry) bool { return x.key.Value == "config" }) {
		for _, x := range entries {
			if x.key.Value != "config" {
				p.errorf(x.key, "%s: config: names the whole chain's file: remove %q, or write the chain inline without config", what, clip(x.key.Value))
				return
			}
		}
		for _, x := range entries {
			at = x.val
			s, ok := p.str(x.val, what+": config", `"/etc/cni/net.d/10-mynet.conflist"`)
			if !ok {
				return
			}
			full := s
			if !filepath.IsAbs(full) {
				full = filepath.Join(p.projectDir(x.val), full)
			}
			data, err := os.ReadFile(full)
			if err != nil {
				p.errorf(x.val, "%s: config: %v", what, err)
				return
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber() // 10000000 stays 10000000, not 1e+07
			if err := dec.Decode(&list); err != nil {
				p.errorf(x.val, "%s: config %s is not a CNI configuration (JSON): %v", what, s, err)
				return
			}
			c.File = full
		}
	} else {
		for _, x := range entries {
			if !slices.Contains(cniListKeys, x.key.Value) {
				p.errorf(x.key, "unknown key %q in %s: a chain has %s (or write config: FILE)", clip(x.key.Value), what, strings.Join(cniListKeys, ", "))
			}
		}
		if err := v.Decode(&list); err != nil {
			p.errorf(e.val, "%s: %v", what, err)
			return
		}
		if !p.cniPlugins(v, what) {
			return
		}
	}
	if list == nil {
		p.errorf(at, "%s is empty: give cniVersion and plugins", what)
		return
	}
	if _, ok := list["plugins"]; !ok && c.File != "" {
		if _, one := list["type"]; one {
			// A .conf: one plugin, which is the chain.
			conf := map[string]any{}
			for k, x := range list {
				if k != "cniVersion" && k != "name" {
					conf[k] = x
				}
			}
			list = map[string]any{"cniVersion": list["cniVersion"], "name": list["name"], "plugins": []any{conf}}
		}
	}
	if msg := cniProblem(list); msg != "" {
		p.errorf(at, "%s: %s", what, msg)
		return
	}
	data, err := json.Marshal(list)
	if err != nil {
		p.errorf(at, "%s: %v", what, err)
		return
	}
	c.Config = data
	nw.CNI = c
}

// cniPlugins checks an inline chain's plugins: at their lines, each a
// mapping with a type.
func (p *parser) cniPlugins(v *yaml.Node, what string) bool {
	ok := true
	for _, x := range p.entries(v) {
		if x.key.Value != "plugins" {
			continue
		}
		l := resolve(x.val)
		if l.Kind != yaml.SequenceNode || len(l.Content) == 0 {
			p.errorf(x.val, "%s: plugins must be a list of plugins like {type: bridge, ...}, got %s", what, describe(l))
			return false
		}
		for i, it := range l.Content {
			pw := fmt.Sprintf("%s: plugins[%d]", what, i)
			typ := ""
			for _, y := range p.mapping(it, pw, "a plugin like {type: bridge, ...}", false) {
				if y.key.Value == "type" {
					if s, good := p.str(y.val, pw+": type", `"bridge"`); good {
						typ = s
					}
				}
			}
			if typ == "" {
				p.errorf(it, "%s has no type: name its plugin, as in type: bridge", pw)
				ok = false
			} else if !names.IsPluginType(typ) {
				p.errorf(it, "%s: type %q is not a plugin's name (a program of the plugin path: letters, digits, '.', '_' and '-')", pw, clip(typ))
				ok = false
			}
		}
	}
	return ok
}

// cniProblem says what makes list no chain topo can run, or "".
func cniProblem(list map[string]any) string {
	v, _ := list["cniVersion"].(string)
	switch {
	case list["cniVersion"] == nil:
		return "cniVersion is missing: write cniVersion: 1.0.0"
	case !slices.Contains(cniVersions, v):
		return fmt.Sprintf("cniVersion %v is not one topo runs: use one of %s (topo observes attachments with CHECK, which CNI 0.4.0 brought)", list["cniVersion"], strings.Join(cniVersions, ", "))
	}
	if n, ok := list["name"]; ok && n != nil {
		if _, isStr := n.(string); !isStr {
			return "name must be a string"
		}
	}
	plugins, _ := list["plugins"].([]any)
	if len(plugins) == 0 {
		return "plugins is missing or empty: give the chain, as in plugins: [{type: bridge, ...}]"
	}
	for i, pl := range plugins {
		m, _ := pl.(map[string]any)
		t, _ := m["type"].(string)
		if !names.IsPluginType(t) {
			return fmt.Sprintf("plugins[%d] has no type, or one that is not a plugin's name", i)
		}
	}
	return ""
}
