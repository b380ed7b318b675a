// Package postgres is latchkey's store on PostgreSQL, for deployments that run
// several `latchkey serve` nodes against one existing database.
//
// It keeps the contract's atomicity in single statements: rotating a session is
// one conditional UPDATE … RETURNING, revoking one is a short transaction
// (mark, then append to the revocation feed only if the mark changed
// something). Appending audit events is one INSERT of all of them, and a
// spend from the limiter's buckets one INSERT … ON CONFLICT DO UPDATE for
// all of them; a capped session creation is a transaction under an advisory
// lock of its user. Tables carry the prefix latchkey_ so the schema can share
// a database. The schema version is kept in latchkey_schema; Open applies the
// missing steps of an append-only list in one transaction under an advisory
// lock, so several nodes may start at once, and refuses a database of a newer
// version.
package postgres
