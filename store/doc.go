// Package store is latchkey's storage contract: the records it keeps, the small
// interfaces a backend implements, and the sentinel errors backends translate their
// driver errors into.
//
// The contract exists so that the token logic never depends on a database. It holds
// no secret that could be presented back to latchkey: refresh tokens are not stored
// at all (a session row holds only its id and generation; the token's MAC key lives
// in the server's keyring), passwords are argon2id hashes, and signing keys are kept
// sealed under a key the store never sees.
//
// Atomicity is expressed as methods, never as transactions: rotating a session is
// one compare-and-swap ([Sessions.RotateSession]), so every backend can implement
// it as a single conditional UPDATE or a single script. Time always comes in as an
// argument; a backend never reads the clock.
//
// # The core and its roles
//
// [Store] is the core: sessions, the revocation feed and signing keys, which
// the token logic needs whatever else is deployed. Everything else a server
// keeps is a role: a small interface beside the core that a backend offers
// or not:
//
//   - [Users]: the accounts of the standalone server;
//   - [Clients]: its registered OAuth clients;
//   - [Identities]: links from identities at other (OpenID Connect)
//     providers to users;
//   - [Markers]: single-use values, such as ID tokens already used to sign in;
//   - [Audit]: security events, kept for a bounded time;
//   - [Buckets]: the token buckets of the login rate limiter, shared by
//     every node.
//
// A role
//
//   - is a small interface in this package, with its own records and, if it
//     needs them, its own sentinel errors next to ErrNotFound and the others;
//   - is offered by a backend that implements it on the same type as the core
//     (with a `var _ store.Users = (*DB)(nil)` line), and by nothing else:
//     there is no registry;
//   - is found by callers with a type assertion on the Store they opened, or
//     handed to them as that interface, so code that needs a role says so in
//     its signature and a backend without it fails at start, not mid-request;
//   - has its own sub-suite in storetest, which storetest.Run runs for every
//     backend that implements the role ("Users/…", "Clients/…");
//   - takes time as an argument, like the core, and expresses atomicity as a
//     method (a conditional write, one script), never as a transaction
//     handed across calls.
//
// Roles may refer to core records by ID (a session records the registration of
// its client), but the core never calls a role.
//
// A capability is an optional addition to the core itself, found by type
// assertion in the same way: [Notifier] announces feed appends at once, and
// [SessionCap] creates a session under a per-user cap atomically.
//
// This package imports only the standard library. Backends live in sibling
// packages (sqlite, postgres, redis) and all pass the suite in store/storetest.
package store
