package load

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the driver latchkey's own SQLite store uses

	"github.com/latchkey/latchkey/password"
)

// Baseline is the floor latchkey is measured against in the same run: an
// HTTP server on loopback whose /protected only verifies one fixed EdDSA
// token (no parsing library, no claims, no revocation check) and whose
// /refresh only runs one single-row write transaction on a SQLite file with
// latchkey's pragmas. /login runs one argon2id verification of the default
// cost (the floor of a password login) and hands out that fixed token, so
// every load mode works unchanged.
type Baseline struct {
	URL   string
	srv   *http.Server
	db    *sql.DB
	token string
}

// StartBaseline starts a Baseline whose SQLite file lives in dir and whose
// /login accepts the password pw (the run's --password).
func StartBaseline(dir, pw string) (*Baseline, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"baseline","typ":"at+jwt"}`))
	claims := enc.EncodeToString([]byte(fmt.Sprintf(`{"iss":"baseline","sub":"u","aud":"latchkey","exp":%d,"sid":"s","jti":"j"}`, time.Now().Add(time.Hour).Unix())))
	input := header + "." + claims
	token := input + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(input)))

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "baseline.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT OR IGNORE INTO t VALUES (1, 0)`); err != nil {
		db.Close()
		return nil, err
	}
	var n atomic.Int64
	mux := http.NewServeMux()
	pairJSON, _ := json.Marshal(map[string]string{"access_token": token, "refresh_token": "baseline"})
	// /login costs what latchkey's login is dominated by by design: one argon2id
	// verification with the default parameters, as many at once as CPUs.
	checkPassword, err := passwordChecker(pw)
	if err != nil {
		db.Close()
		return nil, err
	}
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if !checkPassword(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write(pairJSON)
	})
	mux.HandleFunc("GET /protected", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		dot := strings.LastIndexByte(tok, '.')
		sig, err := enc.DecodeString(tok[dot+1:])
		if dot < 0 || err != nil || !ed25519.Verify(pub, []byte(tok[:dot]), sig) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"You have access"}`))
	})
	mux.HandleFunc("POST /refresh", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), `UPDATE t SET n = ? WHERE id = 1`, n.Add(1)); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(pairJSON)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, err
	}
	b := &Baseline{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: mux}, db: db, token: token}
	go b.srv.Serve(ln)
	return b, nil
}

// Close stops the server.
func (b *Baseline) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	b.db.Close()
	return err
}

// passwordChecker returns what a bare /login costs: the JSON body's password
// verified against pw's argon2id hash with the default parameters, as many
// at once as CPUs, as latchkey's login is bounded.
func passwordChecker(pw string) (func(r *http.Request) bool, error) {
	hash, err := password.Hash(pw, password.Default())
	if err != nil {
		return nil, err
	}
	hashing := make(chan struct{}, runtime.NumCPU())
	return func(r *http.Request) bool {
		var body struct {
			Password string `json:"password"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		hashing <- struct{}{}
		ok, err := password.Verify(hash, body.Password)
		<-hashing
		return err == nil && ok
	}, nil
}
