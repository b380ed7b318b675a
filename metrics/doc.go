// Package metrics exposes what latchkey does as Prometheus metrics: logins,
// refreshes and verifications by outcome, revocations by reason, detected
// refresh-token reuse, rate-limit refusals, store latency and errors, how far
// behind the revocation feed this node is, the signing keys' age, and the HTTP
// requests of the token server by route.
//
// A [*Metrics] is a [latchkey.Observer]: give it to latchkey.Config.Observer
// (and to server.Config.Metrics for the token server). It is also a
// [prometheus.Collector], so an application registers it on its own registry
// next to its own metrics; nothing is registered globally.
//
// Every label has a bounded set of values — outcomes, reasons, grants, store
// operations, route patterns, methods, status codes — and never a user,
// session, token or address, so an attacker cannot grow the number of series.
// docs/operations.md lists every metric and the alert rules that go with them.
package metrics
