package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 description of the whole HTTP API. Tests check
// real responses of every endpoint against it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document that GET /openapi.json serves.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	w.Write(openAPI)
}
