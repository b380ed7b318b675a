// Package compactjws checks the shape of a JWS in compact serialization
// before a JOSE library parses it.
//
// go-jose removes whitespace anywhere in its input before parsing, so a token
// with a tab or a line break in it would verify as the token without them.
// A token is a credential compared byte for byte elsewhere (remembered tokens,
// logs, tests); accepting a second spelling of it helps nobody, so every
// parser in latchkey refuses anything but three base64url segments.
package compactjws

// Valid reports whether s is three segments of the unpadded base64url alphabet
// joined by two dots, and nothing else. A segment may be empty (an unsigned
// JWS has no signature); the parser that follows says what is wrong with it.
func Valid(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}
