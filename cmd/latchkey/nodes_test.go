package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

func get(t *testing.T, url, bearer string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	decode(resp, &out)
	return resp.StatusCode, out
}

// Three nodes on one PostgreSQL database, or one Redis, or one Redis Cluster,
// behave as one server: a refresh on B and a replay on C is detected, and a
// logout on A is enforced on B and C within the revocation delay.
func TestNodesShareAStore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(testing.TB) string
	}{
		{"postgres", testenv.Postgres},
		{"redis", testenv.Redis},
		{"cluster", testenv.RedisCluster},
	} {
		t.Run(tc.name, func(t *testing.T) { nodesShare(t, tc.store(t)) })
	}
}

func nodesShare(t *testing.T, store string) {
	secret := make([]byte, 32)
	rand.Read(secret)
	env := map[string]string{"LATCHKEY_SECRET": base64.StdEncoding.EncodeToString(secret)}
	// The grace window is long so that a loaded machine cannot stretch the
	// concurrent refreshes below past it; reuse is shown with a token two
	// generations old, which no grace window covers.
	args := []string{"--store", store, "--demo", "--revocation-delay", "200ms", "--reuse-grace", "30s", "--issuer", "http://latchkey.test"}
	// Three separate OS processes, as behind a load balancer.
	a, b, c := startProcess(t, args, env), startProcess(t, args, env), startProcess(t, args, env)

	code, p0 := post(t, a+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 {
		t.Fatalf("login on A = %d %v", code, p0)
	}
	code, p1 := post(t, b+"/refresh", p0["refresh_token"].(string), "")
	if code != 200 {
		t.Fatalf("refresh on B = %d %v", code, p1)
	}
	if code, _ := get(t, c+"/protected", p1["access_token"].(string)); code != 200 {
		t.Fatalf("B's access token on C = %d", code)
	}
	code, p2 := post(t, a+"/refresh", p1["refresh_token"].(string), "")
	if code != 200 || p2["refresh_token"] == p1["refresh_token"] {
		t.Fatalf("refresh of B's token on A = %d %v", code, p2)
	}
	if code, out := post(t, c+"/refresh", p0["refresh_token"].(string), ""); code != 401 || out["error"] != "refresh_reused" {
		t.Fatalf("replay on C = %d %v", code, out)
	}
	p1 = p2 // the current pair, which the replay must have killed
	// The session is dead everywhere, within the revocation delay.
	deadline := time.Now().Add(200*time.Millisecond + time.Second)
	for _, node := range []string{a, b} {
		for {
			code, _ := get(t, node+"/protected", p1["access_token"].(string))
			if code == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s still accepts the revoked session's token", node)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 30 concurrent refreshes of one token spread over the three nodes: all 200
	// with one identical new token.
	code, r0 := post(t, a+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 {
		t.Fatalf("login = %d", code)
	}
	nodes := []string{a, b, c}
	start := time.Now()
	got := make([]string, 30)
	codes := make([]int, 30)
	errs := make([]string, 30)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			code, out := post(t, nodes[i%3]+"/refresh", r0["refresh_token"].(string), "")
			codes[i] = code
			got[i], _ = out["refresh_token"].(string)
			errs[i] = fmt.Sprint(out["error"], " ", time.Since(start))
		})
	}
	wg.Wait()
	for i := range 30 {
		if codes[i] != 200 || got[i] != got[0] {
			t.Fatalf("refresh %d on node %d = %d %s, token equal to the first: %v", i, i%3, codes[i], errs[i], got[i] == got[0])
		}
	}
	// Exactly one generation advance: the new token rotates once more.
	if code, _ := post(t, c+"/refresh", got[0], ""); code != 200 {
		t.Fatalf("the shared successor does not refresh: %d", code)
	}

	// Logout on A is enforced on B and C.
	code, q := post(t, a+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 {
		t.Fatalf("login = %d", code)
	}
	access := q["access_token"].(string)
	if code, _ := post(t, a+"/logout", access, ""); code != 204 {
		t.Fatalf("logout on A = %d", code)
	}
	start = time.Now()
	for _, node := range []string{b, c} {
		for {
			code, out := get(t, node+"/protected", access)
			if code == 401 && out["error"] == "token_revoked" {
				break
			}
			if time.Since(start) > 200*time.Millisecond+time.Second {
				t.Fatalf("node %s accepts a logged-out token %v after the logout", node, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("logout on A refused on B and C after %v (revocation delay 200ms)", time.Since(start))

	// A key rotation made on the shared store is used by all: a node started
	// after it signs with the promoted key, and A, B and C accept its tokens.
	var out strings.Builder
	if err := run(context.Background(), []string{"keys", "rotate", "--force", "--store", store}, envFunc(env), strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatalf("keys rotate: %v", err)
	}
	d, _, _ := startServe(t, args, env)
	code, r := post(t, d+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 {
		t.Fatalf("login on D = %d", code)
	}
	tok := r["access_token"].(string)
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h struct{ Kid string }
	json.Unmarshal(hdr, &h)
	if !strings.Contains(out.String(), h.Kid+"  EdDSA  current") {
		t.Fatalf("D signs with key %s, not the promoted one:\n%s", h.Kid, out.String())
	}
	for _, node := range []string{a, b, c} {
		if code, _ := get(t, node+"/protected", tok); code != 200 {
			t.Fatalf("node %s refuses a token signed with the rotated key: %d", node, code)
		}
	}
}

func decode(resp *http.Response, v any) { json.NewDecoder(resp.Body).Decode(v) }

// Revocations are pushed (LISTEN/NOTIFY, Redis pub/sub): with a 20-second
// revocation delay, so that polling alone would take up to 10 s, a logout on A
// is still refused on B within a second or two.
func TestRevocationPushed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(testing.TB) string
	}{
		{"postgres", testenv.Postgres},
		{"redis", testenv.Redis},
		{"cluster", testenv.RedisCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.store(t)
			secret := make([]byte, 32)
			rand.Read(secret)
			env := map[string]string{"LATCHKEY_SECRET": base64.StdEncoding.EncodeToString(secret)}
			args := []string{"--store", store, "--demo", "--revocation-delay", "20s", "--issuer", "http://latchkey.test"}
			a, _, _ := startServe(t, args, env)
			b, _, _ := startServe(t, args, env)
			code, p := post(t, a+"/login", "", `{"username":"test","password":"test"}`)
			if code != 200 {
				t.Fatalf("login = %d", code)
			}
			access := p["access_token"].(string)
			if code, _ := get(t, b+"/protected", access); code != 200 {
				t.Fatalf("B refuses a fresh token: %d", code)
			}
			if code, _ := post(t, a+"/logout", access, ""); code != 204 {
				t.Fatalf("logout = %d", code)
			}
			start := time.Now()
			for {
				if code, _ := get(t, b+"/protected", access); code == 401 {
					break
				}
				if time.Since(start) > 2*time.Second {
					t.Fatal("B still accepts the token 2 s after the logout: the revocation was not pushed")
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("pushed revocation reached B after %v", time.Since(start))
		})
	}
}
