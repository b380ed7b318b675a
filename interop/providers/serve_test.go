package providers_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The product as an operator runs it: `latchkey serve --provider` as its own
// process beside a real provider, driven over HTTP from outside.
func TestServeWithProvider(t *testing.T) {
	op := startOP(t)
	bin := filepath.Join(t.TempDir(), "latchkey")
	build := exec.Command("go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--store", "sqlite:"+filepath.Join(dir, "lk.db"), "--demo")
	cmd.Env = append(os.Environ(), "LATCHKEY_PROVIDERS=example="+op.Issuer()+",client_id="+native)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	var logs bytes.Buffer
	var mu sync.Mutex
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-addr:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("serve did not start:\n%s", logs.String())
	}
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
