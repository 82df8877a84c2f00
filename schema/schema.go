// Package schema holds the JSON Schema of the topology file.
package schema

import _ "embed"

// JSON is the JSON Schema (draft 2020-12) of the topology file, as
// `topo schema` prints it and editors read it through the
// yaml-language-server modeline.
//
//go:embed topo.schema.json
var JSON []byte
