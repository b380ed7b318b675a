// Package openapi checks the server's OpenAPI 3.1 document (GET /openapi.json)
// with kin-openapi: the document is valid, and every request and response of
// every endpoint, OAuth included, matches it. The endpoints of a server with
// OpenID Connect providers are driven against a real provider
// (internal/testop). It has no non-test code; it lives in the interop module
// so that kin-openapi is not a dependency of the library's module.
package openapi
