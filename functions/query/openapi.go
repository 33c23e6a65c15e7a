package query

import (
	_ "embed"
	"net/http"

	"sigs.k8s.io/yaml"

	"github.com/flowlake/flowlake/internal/auth"
)

// openAPIYAML is the OpenAPI 3 description of the API, written by hand.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIDoc is openAPIYAML as JSON, as served.
var openAPIDoc = mustJSON(openAPIYAML)

func mustJSON(y []byte) []byte {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		panic("openapi.yaml: " + err.Error()) // a build defect: the tests load it
	}
	return j
}

// OpenAPI returns the OpenAPI 3 document of the API (JSON).
func OpenAPI() []byte { return openAPIDoc }

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPIDoc)
	return err
}
