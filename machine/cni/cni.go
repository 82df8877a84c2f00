// Package cni is the CNI mechanism of package machine: it runs a CNI
// network's plugin chain (ADD, CHECK, DEL) through libcni, the CNI
// project's own library, with its cache of each ADD's config and result
// in the project's runtime folder (names.Runtime.CNI), and reads that
// cache back as the project's attachments. Kernel is the real one, Fake
// the in-memory one.
package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Kernel runs the plugins of Path (names.CNIPath, or CNI_PATH's).
type Kernel struct {
	Runtime names.Runtime
	Path    []string
}

// New is the mechanism of rt, whose plugins are those of CNI_PATH when
// it is set, else of names.CNIPath.
func New(rt names.Runtime) *Kernel {
	path := names.CNIPath
	if env := os.Getenv(names.CNIPathEnv); env != "" {
		path = filepath.SplitList(env)
	}
	return &Kernel{Runtime: rt, Path: path}
}

func (k *Kernel) config(cache string) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(k.Path, cache, &execer{DefaultExec: invoke.DefaultExec{RawExec: &invoke.RawExec{}, PluginDecoder: version.PluginDecoder{}}})
}

// runtimeConf is what the chain runs with for o; it refuses a cache that
// is not a project's CNI folder of the runtime root (a DEL may remove
// it).
func (k *Kernel) runtimeConf(o op.CNIAdd) (*libcni.RuntimeConf, error) {
	if c := filepath.Clean(o.Cache); filepath.Base(c) != "cni" || filepath.Dir(filepath.Dir(c)) != filepath.Clean(k.Runtime.Root) {
		return nil, fmt.Errorf("network %s: cache %s is not a project's CNI folder under %s", o.Network, o.Cache, k.Runtime.Root)
	}
	p, err := names.NetnsPath(o.NS)
	if err != nil {
		return nil, err
	}
	return &libcni.RuntimeConf{ContainerID: o.NS, NetNS: p, IfName: o.IfName}, nil
}

// execer runs plugins as libcni's own does, but an ADD or CHECK dies
// with topo: a topo killed in the middle of a chain's ADD leaves no
// plugin running on beside the recovery that undoes it with DEL. A DEL
// is left to finish: one cut short can lose what it had still to remove
// (Debian's bridge plugin finds its NAT rules from the interface it
// deleted first), and DEL again is harmless.
type execer struct{ invoke.DefaultExec }

func (e *execer) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, pluginPath)
	c.Env, c.Stdin, c.Stdout, c.Stderr = environ, bytes.NewReader(stdin), &stdout, &stderr
	if !slices.Contains(environ, "CNI_COMMAND=DEL") {
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	// Pdeathsig follows the thread that forked, not the process: the
	// thread stays until the plugin ends.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.Run(); err != nil {
		return nil, pluginError(err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// pluginError is a failed plugin's error as CNI's spec has it print it
// (a JSON types.Error on stdout), or what it wrote otherwise.
func pluginError(err error, stdout, stderr []byte) error {
	e := &types.Error{}
	switch {
	case len(stdout) > 0 && json.Unmarshal(stdout, e) == nil && e.Msg != "":
	case len(stderr) > 0:
		e.Msg = fmt.Sprintf("netplugin failed: %q", stderr)
	default:
		e.Msg = fmt.Sprintf("netplugin failed with no error message: %v", err)
	}
	return e
}

// Add runs the chain's ADD. A chain that fails halfway is undone with
// its DEL, as CNI's spec asks of runtimes, so that a failed step has
// changed nothing; the error carries the plugin's message and code.
func (k *Kernel) Add(ctx context.Context, o op.CNIAdd) error {
	list, err := libcni.ConfListFromBytes([]byte(o.Config))
	if err != nil {
		return fmt.Errorf("network %s: the chain's config: %w", o.Network, err)
	}
	rt, err := k.runtimeConf(o)
	if err != nil {
		return err
	}
	rt.Args = wanted(o)
	c := k.config(o.Cache)
	if _, err := c.AddNetworkList(ctx, list, rt); err != nil {
		err = Explain(err)
		if derr := k.undoAdd(context.WithoutCancel(ctx), c, list, rt); derr != nil {
			err = errors.Join(err, fmt.Errorf("and the DEL that undoes what the chain did before it failed: %w", derr))
		}
		k.forgetIfEmpty(o.Cache)
		return fmt.Errorf("network %s, container %s: %w", o.Network, o.Container, err)
	}
	return nil
}

// wanted is the CNI_ARGS that ask the chain for o's addresses and
// hardware address, none when o has neither. IgnoreUnknown keeps a
// plugin that reads CNI_ARGS but neither key from refusing them.
func wanted(o op.CNIAdd) [][2]string {
	if len(o.IPs) == 0 && len(o.MAC) == 0 {
		return nil
	}
	args := [][2]string{{"IgnoreUnknown", "1"}}
	if len(o.IPs) > 0 {
		ips := make([]string, len(o.IPs))
		for i, a := range o.IPs {
			ips[i] = a.String()
		}
		args = append(args, [2]string{"IP", strings.Join(ips, ",")})
	}
	if len(o.MAC) > 0 {
		args = append(args, [2]string{"MAC", o.MAC.String()})
	}
	return args
}

// undoAdd runs the DEL of each plugin of a chain whose ADD failed, the
// last first, each on its own: the chain's DEL stops at its first
// failure, and the plugin that failed its ADD (a bad config) fails its
// DEL too, which must not keep the plugins before it from theirs.
func (k *Kernel) undoAdd(ctx context.Context, c *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	var errs []error
	for i := len(list.Plugins) - 1; i >= 0; i-- {
		one := *list
		one.Plugins = list.Plugins[i : i+1]
		if err := c.DelNetworkList(ctx, &one, rt); err != nil && i < len(list.Plugins)-1 {
			errs = append(errs, Explain(err))
		}
	}
	return errors.Join(errs...)
}

// Del runs the chain's DEL and drops its cache entry; when it was the
// project's last, the project's CNI folder goes (the cache, and the
// leases host-local kept there).
func (k *Kernel) Del(ctx context.Context, o op.CNIDel) error {
	list, err := libcni.ConfListFromBytes([]byte(o.Config))
	if err != nil {
		return fmt.Errorf("network %s: the chain's config: %w", o.Network, err)
	}
	rt, err := k.runtimeConf(op.CNIAdd(o))
	if err != nil {
		return err
	}
	if err := k.config(o.Cache).DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("network %s, container %s: %w", o.Network, o.Container, Explain(err))
	}
	k.forgetIfEmpty(o.Cache)
	return nil
}

// forgetIfEmpty removes a project's CNI folder once its cache holds no
// attachment.
func (k *Kernel) forgetIfEmpty(cache string) {
	entries, err := os.ReadDir(filepath.Join(cache, "results"))
	if err == nil && len(entries) > 0 || err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
	_ = os.RemoveAll(cache)
}

// Explain adds a plugin's error code to err (CNI's types.Error, whose
// message leaves it out): "plugin type=\"bridge\" failed (add): ...
// (CNI error code 7: invalid network config)".
func Explain(err error) error {
	var te *types.Error
	if !errors.As(err, &te) {
		return err
	}
	return fmt.Errorf("%w (CNI error code %d%s)", err, te.Code, codeWords(te.Code))
}

// codeWords names CNI's well-known error codes (the spec's "Error").
func codeWords(code uint) string {
	w := map[uint]string{
		1: "incompatible CNI version", 2: "unsupported field in network configuration",
		3: "container unknown or does not exist", 4: "invalid necessary environment variables",
		5: "I/O failure", 6: "failed to decode content", 7: "invalid network config",
		11: "try again later",
	}[code]
	if w == "" {
		return ""
	}
	return ": " + w
}

// Observe reads the project's attachments from its cache, each with its
// result's addresses and what its chain's CHECK says now.
func (k *Kernel) Observe(ctx context.Context, project string) ([]state.CNIAttachment, error) {
	cache := k.Runtime.CNI(project)
	c := k.config(cache)
	atts, err := c.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("read CNI cache %s: %w", cache, err)
	}
	var out []state.CNIAttachment
	for _, a := range atts {
		sa := state.CNIAttachment{Network: a.Network, ID: a.ContainerID, IfName: a.IfName, NetNS: a.NetNS, Config: string(a.Config)}
		list, err := libcni.ConfListFromBytes(a.Config)
		if err != nil {
			sa.Check = "its cached config: " + err.Error()
			out = append(out, sa)
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: a.NetNS, IfName: a.IfName}
		if res, err := c.GetNetworkListCachedResult(list, rt); err == nil && res != nil {
			fillResult(&sa, res)
		}
		if err := c.CheckNetworkList(ctx, list, rt); err != nil {
			sa.Check = Explain(err).Error()
		}
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool { return attKey(out[i]) < attKey(out[j]) })
	return out, nil
}

func attKey(a state.CNIAttachment) string { return a.Network + "\x00" + a.ID + "\x00" + a.IfName }

// fillResult reads the addresses and MAC of the container's interface
// out of a result.
func fillResult(sa *state.CNIAttachment, res types.Result) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return
	}
	idx := -1
	for i, in := range r.Interfaces {
		if in.Name == sa.IfName && in.Sandbox != "" {
			idx, sa.MAC = i, strings.ToLower(in.Mac)
		}
	}
	for _, ip := range r.IPs {
		if ip.Interface != nil && idx >= 0 && *ip.Interface != idx {
			continue
		}
		sa.Addrs = append(sa.Addrs, ip.Address.String())
		gw := ""
		if ip.Gateway != nil {
			gw = ip.Gateway.String()
		}
		sa.Gateways = append(sa.Gateways, gw)
	}
}
