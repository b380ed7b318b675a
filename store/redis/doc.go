// Package redis is latchkey's store on Redis or Redis Cluster, for
// deployments whose nodes already share one.
//
// Every atomic operation touches one hash slot: a session is one hash whose key
// carries the session id as hash tag, so rotation is a single Lua script that
// compares the generation and writes in one step. The revocation feed lives in
// one slot ({feed}) and is appended by a script that takes the next sequence
// number and adds the entry together, so feed order is commit order.
// User-wide reads (a user's sessions) go through a per-user set of session ids
// and work across slots. Identities live in one slot ({identities}), so a
// link and an unlink that keeps the last identity are each one script;
// creating a user with an identity spans the user's slots too and is a
// sequence that readers never see half done (see identities.go). A marker is
// one key, checked and set by one script. Audit events live in one slot
// ({audit}), so an append of a batch is one script, all or none; the
// limiter's buckets share one slot ({rl}), so a spend from all the buckets
// of a login is one script. The session cap keeps, in each user's slot, the
// user's sessions by last use, and one script there counts them and picks
// those to revoke (see sessioncap.go).
//
// Sessions carry a Redis expiry 25 hours past their absolute end, so expired
// data disappears without a sweep; Purge removes revoked and idle-expired ones
// sooner, in small SCAN batches that never block the server. A bucket expires
// when it has refilled; audit events stay until PurgeEvents.
//
// There is no schema to migrate: a hash written by an older version lacks the
// newer fields, and the store reads them as that version meant. A session
// without a client registration is first-party ("") if it has no client, and
// of no registration at all ("-") if it has one, so such an OAuth session is
// never refreshed again (nor ever as a first-party one); a client without a
// registration reads as ID@created_at, the value the SQL stores migrate to.
package redis
