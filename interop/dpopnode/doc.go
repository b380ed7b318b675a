// Package dpopnode checks latchkey's DPoP (RFC 9449) against an independent
// client: oauth4webapi, pinned in package-lock.json, running in Node. The Go
// test builds and starts `latchkey serve --demo` as its own process and runs
// dpop.test.mjs with `node --test`: discovery, the password grant as the
// public client demo with a DPoP key and the use_dpop_nonce retry, a
// protected request, refresh with rotation, and the refusals of the token
// without its key.
//
// The test needs Node: LATCHKEY_TEST_NODE is the path to node (unset, it
// skips, saying so) and the package installed with
// `npm ci --prefix interop/dpopnode`. .ci/run does both.
package dpopnode
