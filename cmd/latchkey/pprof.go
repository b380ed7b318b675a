//go:build pprof

package main

// A build with -tags pprof serves net/http/pprof on LATCHKEY_PPROF_ADDR
// (e.g. 127.0.0.1:6060), for the profiles of docs/benchmarks.md. Release
// builds have no such listener.

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	if addr := os.Getenv("LATCHKEY_PPROF_ADDR"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
