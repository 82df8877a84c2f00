// Package schema holds the JSON Schema of the topology file. Editors use it
// through yaml-language-server for completion and hover help (each file
// starts with "# yaml-language-server: $schema=..."); `topo schema`
// prints it. Tests hold it to the spec package, which is what topo itself
// enforces; the schema cannot express every rule (overlapping subnets,
// references between objects), so spec is the authority.
package schema

import _ "embed"

// JSON is the JSON Schema (draft 2020-12) of topo.yaml, as written in
// topo.schema.json. Callers must not modify it.
//
//go:embed topo.schema.json
var JSON []byte
