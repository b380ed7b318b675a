package text_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/text"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"a\x00b":     "ab",
		"\xff\xfeok": "ok",
		"ééé":        "é", // 6 bytes cut to 3 would split the second é
	} {
		n := 64
		if in == "ééé" {
			n = 3
		}
		if got := text.Clean(in, n); got != want {
			t.Errorf("Clean(%q, %d) = %q, want %q", in, n, got, want)
		}
	}
	long := text.Clean(strings.Repeat("é", 200), 255)
	if !utf8.ValidString(long) || len(long) > 255 {
		t.Fatalf("Clean cut mid-character: %q", long)
	}
}

func TestQuote(t *testing.T) {
	if got := text.Quote("a\"b", 64); got != `"a\"b"` {
		t.Fatalf("Quote = %s", got)
	}
	if got := text.Quote(strings.Repeat("x", 100), 64); !strings.HasSuffix(got, `…"`) || len(got) > 64+6 {
		t.Fatalf("Quote of a long value = %s", got)
	}
}
