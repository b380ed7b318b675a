// Package jwks checks that a JOSE library latchkey does not use,
// lestrrat-go/jwx, verifies latchkey's access tokens from its JWKS. It has no
// non-test code; it lives in the interop module so that jwx is not a
// dependency of the library's module.
package jwks
