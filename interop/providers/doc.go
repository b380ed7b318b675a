// Package providers tests signing in with another OpenID Connect provider
// against a real one (zitadel/oidc's op, package interop/internal/testop),
// over loopback HTTP: native ID-token login, RFC 8693 token exchange, every
// refusal of an ID token, key rotation and caching, a provider that is down,
// replay across nodes of PostgreSQL and Redis, and account linking.
package providers
