package device_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/device"
)

func TestName(t *testing.T) {
	for _, c := range []struct{ name, ua, want string }{
		{"ChromeLinux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36", "Chrome 156 on Linux"},
		{"HeadlessChrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Headless Chrome 131 on Linux"},
		{"SafariIPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17 on iPhone"},
		{"SafariIPad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17 on iPad"},
		{"SafariMac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari 17 on macOS"},
		{"FirefoxWindows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128 on Windows"},
		{"EdgeWindows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge 126 on Windows"},
		{"ChromeAndroid", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome 126 on Android"},
		{"Curl", "curl/8.5.0", "curl"},
		{"GoDefault", "Go-http-client/1.1", "Go HTTP client"},
		{"GoDefaultHTTP2", "Go-http-client/2.0", "Go HTTP client"},
		{"LatchkeyClient", "latchkey-go-client/1", "latchkey Go client"},
		{"OtherLibrary", "python-requests/2.31.0", "python-requests"},
		{"Crawler", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"},
		{"Empty", "", device.Unknown},
		{"Blank", "   ", device.Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := device.Name(c.ua); got != c.want {
				t.Errorf("Name(%q) = %q, want %q", c.ua, got, c.want)
			}
		})
	}
}

// Whatever a client sends, the name is short, valid UTF-8 text.
func TestNameOfGarbage(t *testing.T) {
	for _, ua := range []string{"<script>alert(1)</script>", "\xff\xfe\x00", strings.Repeat("x", 300), "Mozilla/5.0", "()/;", "/" + strings.Repeat("é", 100)} {
		got := device.Name(ua)
		if got == "" || !utf8.ValidString(got) || len(got) > 64 || strings.ContainsRune(got, 0) {
			t.Errorf("Name(%q) = %q: want a short, valid, non-empty name", ua, got)
		}
	}
}

func FuzzName(f *testing.F) {
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile/15E148 Safari/604.1")
	f.Add("curl/8.5.0")
	f.Fuzz(func(t *testing.T, ua string) {
		got := device.Name(ua)
		if got == "" || !utf8.ValidString(got) || len(got) > 96 {
			t.Fatalf("Name(%q) = %q", ua, got)
		}
	})
}
