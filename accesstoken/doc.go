// Package accesstoken signs and verifies latchkey's access tokens: JWTs in the
// RFC 9068 profile (header typ "at+jwt" and kid; claims iss, sub, aud, exp, iat,
// jti, sid and fresh).
//
// Verification is deliberately narrow: compact serialisation only, a length cap
// before parsing, the key chosen by kid from our own key ring and never from the
// token, the header algorithm required to equal that key's algorithm (no "none",
// no RS256/HS256 confusion), and exp, iss and aud always checked. It owns the
// JOSE dependency so no other package parses JWTs.
package accesstoken
