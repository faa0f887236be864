// Package docs carries the documents the server serves itself: the OpenAPI
// description of its HTTP APIs (openapi.yaml, the one source, read by people here
// and served as /openapi.json).
package docs

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIYAML is the OpenAPI 3.1 document as written.
func OpenAPIYAML() []byte { return openAPIYAML }

// OpenAPIJSON is the OpenAPI 3.1 document in JSON, as /openapi.json serves it.
func OpenAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml to JSON: %w", err)
	}
	return b, nil
}
