// Package server is latchkey's standalone token server: the HTTP API of
// PRODUCT.md (register, login, refresh, logout, sessions, password change, JWKS,
// health) on top of the latchkey library, the users service and the login rate
// limiter. cmd/latchkey wires it to flags, a store and a listener.
package server
