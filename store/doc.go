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
// This package imports only the standard library. Backends live in sibling
// packages (sqlite, postgres, redis) and all pass the suite in store/storetest.
package store
