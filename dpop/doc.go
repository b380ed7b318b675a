// Package dpop implements DPoP (RFC 9449): proofs of possession that bind
// tokens to a key the client holds, so a token copied out of a log, a proxy or
// local storage is useless without that key.
//
// # What a Verifier checks
//
// Verify accepts a request's proof only if all of these hold:
//
//   - exactly one DPoP header, no longer than Config.MaxSize (checked before
//     anything is parsed), in the JWS compact serialisation;
//   - typ is exactly "dpop+jwt" and there are no critical header parameters;
//   - alg is in the allow-list (asymmetric algorithms only; "none" and HMAC
//     can never be allowed) and fits the type and size of the key;
//   - jwk is present and holds a public key: a private or symmetric member
//     (d, p, q, dp, dq, qi, oth, k, priv) is refused;
//   - the signature verifies with that jwk (through go-jose; there is no
//     hand-made JWS code here);
//   - htm equals the request method, and htu the request URL, comparing
//     scheme, host, port and path after RFC 3986 syntax- and scheme-based
//     normalisation (RFC 9449 §4.3), ignoring query and fragment;
//   - iat is at most Config.MaxAge old and at most Config.Leeway ahead;
//   - jti is present, at most MaxIDLength bytes, and was never accepted
//     before for the same key within that window — recorded in a
//     store.Markers, so on every node that shares the store;
//   - ath, when the request presents an access token, equals the base64url
//     SHA-256 of that token;
//   - the server nonce, when the request requires one, is one this server's
//     key issued in the current or previous nonce step.
//
// VerifyBound adds, for resource servers, that the proof's key thumbprint
// equals the cnf.jkt of the (already verified) access token.
//
// # Errors
//
// A refused proof is an *Error whose Code is invalid_dpop_proof,
// use_dpop_nonce, or invalid_token (a valid proof for a token bound to
// another key), with a message safe to show to the client that never quotes
// the proof. Anything else Verify returns is a store or configuration failure.
//
// # Server nonces
//
// Nonces need no storage: a nonce is a time-step number with an HMAC of it
// under Config.NonceKey, so every node sharing the key issues and accepts the
// same nonces. A nonce lives between one and two Config.NonceSteps. Rotating
// the key ends every nonce in circulation; clients then receive
// use_dpop_nonce once and retry with the nonce of the DPoP-Nonce header.
//
// # What is left to the caller
//
//   - Computing the request URL the client used: behind trusted proxies the
//     scheme and host come from the proxy's headers, which only the HTTP
//     layer may trust. Request.URL must be that external URL.
//   - Binding: recording a session's JKT when it starts, requiring a proof by
//     the same key on every refresh, putting cnf.jkt and token_type "DPoP"
//     into tokens, and refusing a bound token presented as Bearer.
//   - The HTTP answer: the status, the WWW-Authenticate: DPoP challenge with
//     the error code and algs, and the DPoP-Nonce header (Verifier.Nonce).
//   - Verifying the access token itself before VerifyBound.
//
// # Clients
//
// NewProof makes a proof for one request with a key from GenerateKey (or
// ParseKey of a key saved with MarshalPEM or MarshalJWK).
package dpop
