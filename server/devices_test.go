package server_test

import (
	"testing"
)

// GET /sessions names each session's device and keeps the raw header.
func TestSessionsNameDevices(t *testing.T) {
	e := newEnv(t)
	agents := map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36":                                   "Chrome 156 on Linux",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari 17 on iPhone",
		"curl/8.5.0":           "curl",
		"latchkey-go-client/1": "latchkey Go client",
	}
	var access string
	for ua := range agents {
		r := e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "User-Agent", ua).want(t, 200, "")
		access = r.str("access_token")
	}
	list, _ := e.call("GET", "/sessions", access, "").want(t, 200, "").body["sessions"].([]any)
	if len(list) != len(agents) {
		t.Fatalf("GET /sessions lists %d sessions, want %d", len(list), len(agents))
	}
	for _, x := range list {
		s := x.(map[string]any)
		ua, _ := s["user_agent"].(string)
		if want, ok := agents[ua]; !ok || s["device"] != want {
			t.Errorf("session with user_agent %q has device %q, want %q", ua, s["device"], want)
		}
	}
}
