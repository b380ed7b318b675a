// Package sqlite is latchkey's embedded store: one SQLite file in WAL mode, the
// zero-set-up default of `latchkey serve` and the easiest store for an
// application that embeds the library on one machine.
//
// It uses the pure-Go modernc.org/sqlite driver, so building latchkey needs no
// C compiler. The cgo driver github.com/mattn/go-sqlite3 is faster per
// statement (see the README for the measurements), but both are far below the
// cost of a refresh's cryptography and network round trip, and a build that
// works on every CI machine matters more.
//
// # Several processes, one file
//
// Two processes may share the file, as during a rolling restart, and behave as
// one store: rotating a session is a single conditional UPDATE … RETURNING, and
// revoking one, appending audit events, spending from the limiter's buckets
// and creating a session under a cap are each a single IMMEDIATE transaction,
// so SQLite's file locks make all of them atomic across processes. Every pooled connection runs with WAL,
// synchronous=NORMAL, foreign keys on and a busy timeout, so a writer waits for
// another process's write instead of failing.
//
// Within one process, writes go through a single connection and queue in Go,
// while reads use a pool of read-only connections. Letting many connections
// race for SQLite's write lock instead makes the losers sleep in SQLite's busy
// handler, and under load some of them starve for seconds.
//
// # Storage
//
// Times are INTEGER Unix milliseconds, 0 for the zero time (so a time exactly
// at the Unix epoch reads back as the zero time). The schema version is the
// database's user_version; Open migrates an older file and refuses a newer
// one. A new file is created readable by its owner only.
package sqlite
