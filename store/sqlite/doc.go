// Package sqlite is latchkey's embedded store: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite driver (no cgo, so `go run` works on a
// machine without a C compiler).
//
// It is the zero-set-up default of `latchkey serve`, and it is safe for several
// processes on one machine sharing the file (a rolling restart): rotation is a
// single conditional UPDATE, and revocation a single IMMEDIATE transaction, so
// SQLite's own file locking makes them atomic across processes.
package sqlite
