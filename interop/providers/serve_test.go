package providers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/interop/internal/serveproc"
)

// The product as an operator runs it: `latchkey serve --provider` as its own
// process beside a real provider, driven over HTTP from outside.
func TestServeWithProvider(t *testing.T) {
	op := startOP(t)
	base := serveproc.Start(t, "LATCHKEY_PROVIDERS=example="+op.Issuer()+",client_id="+native)
	post := func(path, ct, body string) (int, map[string]any) {
		resp, err := http.Post(base+path, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	tok := op.IDToken(t, native, alice.Username, hashed("n-42"))
	code, body := post("/login", "application/json", `{"provider":"example","id_token":"`+tok+`","nonce":"n-42"}`)
	if code != 200 || body["refresh_token"] == nil {
		t.Fatalf("native login = %d %v", code, body)
	}
	code, body = post("/login", "application/json", `{"provider":"example","id_token":"`+tok+`","nonce":"n-42"}`)
	if code != 401 || body["error"] != "invalid_token" {
		t.Fatalf("replay = %d %v", code, body)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "client_id": {"demo"},
		"subject_token": {op.IDToken(t, native, alice.Username, "")}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}
	code, body = post("/oauth/token", "application/x-www-form-urlencoded", form.Encode())
	if code != 200 || body["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("token exchange = %d %v", code, body)
	}
}
