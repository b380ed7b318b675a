// Package browser holds latchkey's end-to-end tests in a real headless
// Chromium: the account page, cookie sessions, implicit refresh across an
// access-token expiry, sign-out everywhere and cross-site requests. It has no
// non-test code; it lives in the interop module so that the browser driver
// (chromedp) is not a dependency of the library's module.
//
// The tests need Chromium: they use LATCHKEY_TEST_CHROMIUM (a path to the
// binary) and otherwise skip, saying so. .ci/run installs Debian's chromium and
// sets the variable.
package browser
