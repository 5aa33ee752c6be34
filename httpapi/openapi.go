package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// openapiYAML is the API's contract, OpenAPI 3.1. The test suite validates
// the document and checks every request it makes and every answer it gets
// against it, so code and contract cannot drift apart.
//
//go:embed openapi.yaml
var openapiYAML []byte

var (
	openapiOnce sync.Once
	openapiJSON []byte
	openapiErr  error
)

// OpenAPI parses and validates the document (a fresh copy each call).
func OpenAPI() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return doc, nil
}

func (s *server) handleOpenAPI(yaml bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if yaml {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(openapiYAML)
			return
		}
		openapiOnce.Do(func() {
			doc, err := OpenAPI()
			if err == nil {
				openapiJSON, err = json.Marshal(doc)
			}
			openapiErr = err
		})
		if openapiErr != nil {
			s.log.ErrorContext(r.Context(), "openapi document", "err", openapiErr)
			writeProblem(w, r, probInternal, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiJSON)
	})
}
