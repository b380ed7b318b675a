// oauth4webapi, an independent OAuth client, as a DPoP client (RFC 9449) of
// a running `latchkey serve --demo`: the Go test dpopnode_test.go starts the
// server and runs this file with `node --test`, the server's URL in
// LATCHKEY_URL. The steps run in order and share the session.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";

const api = process.env.LATCHKEY_URL;
if (!api) throw new Error("LATCHKEY_URL is not set: run this through dpopnode_test.go");
const insecure = { [oauth.allowInsecureRequests]: true }; // plain http on loopback
const client = { client_id: "demo" }; // the public client --demo registers

const keyPair = await oauth.generateKeyPair("ES256");
const dpop = oauth.DPoP(client, keyPair);
let as, tokens;

// sendWithNonce makes a token request with the DPoP handle and, when the
// server asks for its nonce (which latchkey does by default), makes it once
// more: the handle has learnt the nonce from the refusal. It returns the
// processed response (by process) and how many requests it took.
async function sendWithNonce(request, process) {
  try {
    return { tokens: await process(as, client, await request()), tries: 1 };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { tokens: await process(as, client, await request()), tries: 2 };
  }
}

// The RFC 7638 thumbprint of the key, as cnf.jkt must hold it.
async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await crypto.subtle.exportKey("jwk", publicKey);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify({ crv, kty, x, y })));
  return Buffer.from(digest).toString("base64url");
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

test("discovery lists DPoP", async () => {
  const r = await oauth.discoveryRequest(new URL(api), { algorithm: "oauth2", ...insecure });
  as = await oauth.processDiscoveryResponse(new URL(api), r);
  assert.equal(as.token_endpoint, api + "/oauth/token");
  assert.ok(as.dpop_signing_alg_values_supported.includes("ES256"), "ES256 is not in dpop_signing_alg_values_supported");
});

test("password grant with DPoP: one use_dpop_nonce retry, a DPoP token bound to the key", async () => {
  const { tokens: t, tries } = await sendWithNonce(() =>
    oauth.genericTokenEndpointRequest(as, client, oauth.None(), "password",
      new URLSearchParams({ username: "test", password: "test" }), { DPoP: dpop, ...insecure }),
    oauth.processGenericTokenEndpointResponse);
  assert.equal(tries, 2, "the server did not ask for its nonce first");
  assert.equal(t.token_type, "dpop");
  assert.equal(claims(t.access_token).cnf?.jkt, await thumbprint(keyPair.publicKey));
  tokens = t;
});

test("protected request to /me with DPoP", async () => {
  const r = await oauth.protectedResourceRequest(tokens.access_token, "GET", new URL(api + "/me"), new Headers(), null,
    { DPoP: dpop, ...insecure });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).username, "test");
});

test("the same access token as plain Bearer is refused with a DPoP challenge", async () => {
  const r = await fetch(api + "/me", { headers: { Authorization: "Bearer " + tokens.access_token } });
  assert.equal(r.status, 401);
  assert.match(r.headers.get("www-authenticate") ?? "", /^DPoP /);
});

test("refresh without the key is refused and changes nothing", async () => {
  const r = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, insecure);
  await assert.rejects(oauth.processRefreshTokenResponse(as, client, r),
    (err) => err instanceof oauth.ResponseBodyError && err.error === "invalid_dpop_proof");
});

test("refresh with rotation, with DPoP", async () => {
  const before = tokens.refresh_token;
  const { tokens: t } = await sendWithNonce(() =>
    oauth.refreshTokenGrantRequest(as, client, oauth.None(), before, { DPoP: dpop, ...insecure }),
    oauth.processRefreshTokenResponse);
  assert.equal(t.token_type, "dpop");
  assert.notEqual(t.refresh_token, before, "the refresh token did not rotate");
  tokens = t;
  const r = await oauth.protectedResourceRequest(tokens.access_token, "GET", new URL(api + "/me"), new Headers(), null,
    { DPoP: dpop, ...insecure });
  assert.equal(r.status, 200);
});

test("a proof by another key is refused", async () => {
  const other = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
  await assert.rejects(
    oauth.protectedResourceRequest(tokens.access_token, "GET", new URL(api + "/me"), new Headers(), null, { DPoP: other, ...insecure }),
    (err) => err instanceof oauth.WWWAuthenticateChallengeError && err.status === 401 &&
      err.cause.some((c) => c.scheme === "dpop" && c.parameters.error === "invalid_token"));
});
