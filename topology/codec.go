package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SchemaVersion is the version of the JSON encoding written by Encode. Decode refuses others,
// so an extender never acts on a topology it misreads.
const SchemaVersion = 2

type document struct {
	SchemaVersion int `json:"schemaVersion"`
	Node
}

// Encode writes the node as versioned, indented JSON.
func Encode(n *Node) ([]byte, error) {
	return json.MarshalIndent(document{SchemaVersion, *n}, "", "  ")
}

// Decode reads what Encode wrote. Unknown fields and other schema versions are errors.
func Decode(data []byte) (*Node, error) {
	var doc document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decoding node topology: %w", err)
	}
	if doc.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("node topology has schemaVersion %d, this build reads %d: upgrade topolane on both sides",
			doc.SchemaVersion, SchemaVersion)
	}
	return &doc.Node, nil
}
