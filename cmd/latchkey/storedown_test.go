package main

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

// When the store goes away, the server says so instead of hanging: /healthz
// answers 503, refresh and login answer 503 unavailable promptly, and access
// tokens still verify offline.
func TestStoreGoesAway(t *testing.T) {
	if os.Getenv(testenv.RedisEnv) == "" {
		t.Skip(testenv.RedisEnv + " not set: skipping the store-outage test (it starts its own redis-server)")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("%s is set but redis-server is not installed: %v", testenv.RedisEnv, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	redis := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("the private redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	url, _, _ := startServe(t, []string{"--store", "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", "--demo", "--issuer", "http://latchkey.test"},
		map[string]string{"LATCHKEY_SECRET": base64.StdEncoding.EncodeToString(secret)})
	code, pair := post(t, url+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 {
		t.Fatalf("login = %d %v", code, pair)
	}
	redis.Process.Kill()
	redis.Wait()

	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("healthz with the store gone = %d, want 503", resp.StatusCode)
	}
	if code, _ := get(t, url+"/protected", pair["access_token"].(string)); code != 200 {
		t.Fatalf("an access token stopped verifying when the store went away: %d", code)
	}
	start := time.Now()
	if code, out := post(t, url+"/refresh", pair["refresh_token"].(string), ""); code != 503 || out["error"] != "unavailable" {
		t.Fatalf("refresh with the store gone = %d %v, want 503 unavailable", code, out)
	}
	if code, out := post(t, url+"/login", "", `{"username":"test","password":"test"}`); code != 503 {
		t.Fatalf("login with the store gone = %d %v, want 503", code, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("answering took %v: the server hangs on a dead store", d)
	}
}
