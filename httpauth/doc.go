// Package httpauth connects latchkey to net/http: it finds tokens in a request
// (Authorization header, JSON body, query, cookies), guards handlers with
// RequireAccess, RequireFresh, RequireRefresh and Optional, and turns every
// failure into the one JSON error shape and RFC 6750 WWW-Authenticate header of
// the HTTP API through WriteError. TrustedProxies.ClientIP finds a client's
// address behind named load balancers, for LoginOptions and rate limits.
//
// Its middleware has the standard shape func(http.Handler) http.Handler and
// imports no router, so it works with http.ServeMux, chi, gin or echo alike.
package httpauth
