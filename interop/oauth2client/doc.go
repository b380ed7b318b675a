// Package oauth2client checks that golang.org/x/oauth2, a client nobody here
// wrote, signs in to the token server and refreshes across access-token
// expiries. It has no non-test code; it lives in the interop module so that
// x/oauth2 is not a dependency of the library's module.
package oauth2client
