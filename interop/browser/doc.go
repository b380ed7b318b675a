// Package browser holds latchkey's end-to-end tests in a real headless
// Chromium: the account page, cookie sessions, implicit refresh across an
// access-token expiry, sign-out everywhere, cross-site requests, and the
// account page's accessibility: axe-core (pinned in axe/, installed with
// `npm ci --prefix interop/browser/axe`) on every state at desktop and phone
// width, and every action with the keyboard alone. It has no
// non-test code; it lives in the interop module so that the browser driver
// (chromedp) is not a dependency of the library's module.
//
// The tests need Chromium: they use LATCHKEY_TEST_CHROMIUM (a path to the
// binary) and otherwise skip, saying so. .ci/run installs Debian's chromium and
// sets the variable.
package browser
