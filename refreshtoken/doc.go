// Package refreshtoken encodes and checks latchkey's opaque refresh tokens and
// decides what a presented token means for its session's lineage.
//
// A refresh token names a session and a generation, authenticated by an
// HMAC-SHA256 under a key from the server's keyring:
//
//	lk_rt_ base64url( version | session id (16) | generation (8) | mac (32) | crc32 (4) )
//
// The prefix lets secret scanners find leaked tokens; the CRC-32 rejects typos and
// garbage before any cryptography or storage is touched; the 256-bit MAC is the
// secret material. Nothing a store holds can be presented as a token: a session
// row keeps only its id and current generation, and the MAC key is not in the
// store. Because the token for (session, generation) is a pure function of the
// key, every node answering a refresh inside the grace window hands out the very
// same successor without storing it.
//
// [Classify] turns (presented generation, session state, time) into a [Verdict]:
// rotate the current generation, answer a just-rotated one with its successor,
// or treat any older one as reuse — over the whole lineage, with constant storage.
package refreshtoken
