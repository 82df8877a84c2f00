package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Render writes the document as Compose's config command does: one file,
// merged, interpolated, included, with profiles applied, anchors and merge
// keys expanded, comments left out, name: first (the project). format is
// "yaml" or "json". Keys keep the order of the files.
func (d *Document) Render(w io.Writer, format, project string) error {
	root := d.p.plain(d.Root)
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	out.Content = append(out.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name"},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: project})
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k != "name" && k != "version" {
			out.Content = append(out.Content, root.Content[i], root.Content[i+1])
		}
	}
	switch format {
	case "yaml":
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(out); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		_, err := w.Write(b.Bytes())
		return err
	case "json":
		var b bytes.Buffer
		writeJSON(&b, out)
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b.Bytes(), "", "  "); err != nil {
			return err
		}
		pretty.WriteByte('\n')
		_, err := w.Write(pretty.Bytes())
		return err
	}
	return fmt.Errorf("format %q: use yaml or json", format)
}

// plain copies n with aliases and merge keys expanded, tags resolved and
// comments dropped.
func (p *parser) plain(n *yaml.Node) *yaml.Node {
	n = resolve(n)
	out := &yaml.Node{Kind: n.Kind, Value: n.Value, Style: n.Style &^ (yaml.TaggedStyle | yaml.FlowStyle)}
	switch n.Kind {
	case yaml.ScalarNode:
		out.Tag = n.ShortTag()
	case yaml.MappingNode:
		out.Tag = "!!map"
		for _, e := range p.entries(n) {
			out.Content = append(out.Content, p.plain(e.key), p.plain(e.val))
		}
	case yaml.SequenceNode:
		out.Tag = "!!seq"
		for _, c := range n.Content {
			out.Content = append(out.Content, p.plain(c))
		}
	}
	return out
}

// writeJSON writes a plain node as compact JSON, keys in order.
func writeJSON(b *bytes.Buffer, n *yaml.Node) {
	str := func(s string) {
		js, _ := json.Marshal(s)
		b.Write(js)
	}
	switch n.Kind {
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			str(n.Content[i].Value)
			b.WriteByte(':')
			writeJSON(b, n.Content[i+1])
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, c)
		}
		b.WriteByte(']')
	default:
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
		case "!!bool":
			b.WriteString(strconv.FormatBool(strings.EqualFold(n.Value, "true")))
		case "!!int":
			if v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				b.WriteString(strconv.FormatInt(v, 10))
				return
			}
			str(n.Value)
		case "!!float":
			if v, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
				return
			}
			str(n.Value)
		default:
			str(n.Value)
		}
	}
}
