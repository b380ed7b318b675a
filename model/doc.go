// Package model holds a Promela model of latchkey's refresh-token rotation,
// rotation.pml, and the test that checks it with the Spin model checker.
//
// The model is N clients refreshing one session through two nodes on one
// store, with lost answers, node crashes between any two steps, a logout, an
// attacker with forged tokens and a grace window that closes at any moment.
// Its steps are named after the Go functions that implement them (Refresh,
// settle, RotateSession, RevokeSession, …). docs/protocol.md maps each step to
// its function, states each property and says what the model leaves out.
//
// The package has no Go API. Its test runs when LATCHKEY_TEST_SPIN names the
// spin binary (Debian's package spin; it needs gcc): it checks every property
// exhaustively and fails on any violation with the counterexample's trail,
// and it checks that every mutant of the model (a planted bug) is caught.
package model
