package daemon

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves Go's profiler: what `go tool pprof
// http://ADDR/debug/pprof/profile?seconds=20` reads to show where a storm
// spends the daemon's CPU. It has its own mux so that nothing reaches it
// through the API listener. A profile must be shorter than
// http.write_timeout, which bounds every response of the listener.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
