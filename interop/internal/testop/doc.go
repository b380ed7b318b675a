// Package testop starts a real OpenID Connect provider in-process, on
// loopback, for latchkey's interoperability tests.
//
// The provider is zitadel/oidc v3's op package (github.com/zitadel/oidc/v3/pkg/op):
// discovery, the JWKS, the authorization endpoint, the authorization-code flow
// with PKCE, the token endpoint and ID-token signing are all zitadel's. This
// package supplies only what zitadel leaves to its user: an in-memory storage
// (clients, users, auth requests, access tokens, RSA signing keys), a small
// username/password login page, and a thin HTTP wrapper that counts requests
// and can simulate an outage.
//
// # Endpoints
//
// The issuer is "http://127.0.0.1:PORT" (plain HTTP, no trailing slash). Paths
// under it are zitadel's defaults:
//
//	/.well-known/openid-configuration  discovery
//	/keys                              JWKS (see [OP.JWKSPath])
//	/authorize                         authorization endpoint
//	/authorize/callback                where the login page hands back to zitadel
//	/oauth/token                       token endpoint
//	/userinfo                          userinfo endpoint
//	/login                             this package's login page (GET shows it, POST submits it)
//
// The JWKS answer carries "Cache-Control: public, max-age=300" by default (see
// [Options.JWKSMaxAge]). zitadel itself sets no Cache-Control header on the
// JWKS; this package adds it by overriding the Keys method of zitadel's
// LegacyServer, which zitadel documents as the way to customise an endpoint.
//
// # Login page
//
// The authorization endpoint redirects the user agent to /login, a plain HTML
// form with no JavaScript and no cookies, which a headless browser (chromedp)
// can fill with these selectors:
//
//	#username               text input, name="username"
//	#password               password input, name="password"
//	button[type=submit]     the submit button (also #submit)
//	form#login              the form itself (POST /login)
//	#error                  present only after a failed attempt, with the reason
//
// A wrong username or password shows the form again with status 401 and an
// #error paragraph. A right one redirects (303) to zitadel's callback, which
// redirects (302) to the client's redirect URI with ?code= and &state=.
//
// # Clients and tokens
//
// A [Client] with an empty Secret is a public, native client: it must use
// PKCE, and a loopback redirect URI such as "http://127.0.0.1/callback"
// matches any port (RFC 8252, section 7.3). A client with a Secret is a
// confidential web client authenticated with client_secret_basic (or
// client_secret_post); its redirect URIs must match exactly.
//
// ID tokens are RS256 and carry iss, sub, aud (["client id"]), azp, client_id, exp, iat,
// auth_time, amr ["pwd"], at_hash, c_hash, nonce (when the authorization
// request had one), email and email_verified (true). email and email_verified
// are included whatever scopes were requested; preferred_username is included
// when the "profile" scope was. Refresh tokens are not issued.
package testop
