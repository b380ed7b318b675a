// Package text tidies text that came from a request before it is stored or
// shown: client-supplied strings may hold any bytes.
package text

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Clean is s as valid UTF-8 without NUL (PostgreSQL's text refuses both),
// at most n bytes, cut on a character boundary. Invalid bytes are dropped.
func Clean(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Quote is an untrusted value quoted for a message, shortened to about n
// bytes.
func Quote(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}
