// Package keys manages the signing keys of access tokens: it generates them,
// seals their private parts for the store, rotates them, and publishes the
// public halves as a JWKS document.
//
// A deployment has at most one current key (it signs), one or more next keys
// (published, not yet signing) and retired keys (no longer signing, still
// published until the last token they signed has expired). Rotation promotes a
// next key that verifiers have already seen, so no verifier meets a token whose
// key it has never been offered.
//
// Private keys are stored sealed with AES-256-GCM under a key derived from the
// deployment secret; the key id and algorithm are authenticated with them, so a
// sealed blob cannot be moved to another row. A database dump alone cannot sign.
package keys
