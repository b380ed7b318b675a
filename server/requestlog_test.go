package server_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/server"
)

// Config.RequestLog: all requests get a line, only the failed ones, or none;
// a line never holds the token that came with the request.
func TestRequestLog(t *testing.T) {
	for _, tc := range []struct {
		mode             string
		wantOK, wantFail bool
	}{
		{"all", true, true},
		{"failed", false, true},
		{"off", false, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			mode, err := server.ParseRequestLog(tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			var logs testenv.Buffer
			e := newEnv(t, func(s *setup) {
				s.logger = slog.New(slog.NewTextHandler(&logs, nil))
				s.requestLog = mode
			})
			a := e.login("test", "test")
			e.call("GET", "/protected", a.access, "").want(t, 200, "")
			e.call("GET", "/protected", "not-a-token", "").want(t, 401, "invalid_token")
			out := logs.String()
			ok := strings.Contains(out, "path=/protected status=200")
			fail := strings.Contains(out, "path=/protected status=401")
			if ok != tc.wantOK || fail != tc.wantFail {
				t.Fatalf("--request-log %s: logged the 200 %v (want %v), the 401 %v (want %v); log:\n%s", tc.mode, ok, tc.wantOK, fail, tc.wantFail, out)
			}
			if strings.Contains(out, a.access) || strings.Contains(out, a.refresh) {
				t.Fatalf("a token reached the log:\n%s", out)
			}
		})
	}
	if _, err := server.ParseRequestLog("some"); err == nil {
		t.Fatal(`ParseRequestLog("some") = nil error`)
	}
}
