package load

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/refreshtoken"
)

// Kinds of ceiling: what a bare handler does on the route a mode measures.
const (
	// CeilingNoStore is /refresh without a store: check the refresh token's
	// checksum and MAC, sign a fresh EdDSA access token, write a token pair
	// of latchkey's shape. Everything a refresh must do but store.
	CeilingNoStore = "nostore"
	// CeilingFixed is /protected answering a fixed JSON body, checking
	// nothing: the limit for a token the server has already verified.
	CeilingFixed = "fixed"
	// CeilingVerify is /protected checking the token's Ed25519 signature and
	// nothing else before the fixed body: the limit for a token never seen.
	CeilingVerify = "verify"
)

// CeilingsFor lists the ceilings of a mode, in the order a run measures
// them; none for a mode without one.
func CeilingsFor(mode string) []string {
	switch mode {
	case ModeRefresh:
		return []string{CeilingNoStore}
	case ModeProtected:
		return []string{CeilingFixed, CeilingVerify}
	}
	return nil
}

// Ceiling is a bare net/http server on loopback that does the least work a
// route can do and still answer what latchkey answers; a figure of latchkey
// divided by the same figure of a Ceiling in the same run is how close to
// the physical limit latchkey is. /login (for the load tool's setup) runs one
// argon2id verification and hands out a pair whose refresh token /refresh
// accepts; /refresh always works as CeilingNoStore; /protected works as the
// kind says.
type Ceiling struct {
	URL  string
	Kind string
	srv  *http.Server
}

// ceilingHandler holds what the handlers share: no locks, nothing mutable.
type ceilingHandler struct {
	codec *refreshtoken.Codec
	priv  ed25519.PrivateKey
	pub   ed25519.PublicKey
	kind  string
}

// StartCeiling starts a Ceiling of kind whose /login accepts the password pw.
func StartCeiling(kind, pw string) (*Ceiling, error) {
	switch kind {
	case CeilingNoStore, CeilingFixed, CeilingVerify:
	default:
		return nil, fmt.Errorf("load: unknown ceiling %q (%s, %s, %s)", kind, CeilingNoStore, CeilingFixed, CeilingVerify)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	key := make([]byte, refreshtoken.KeySize)
	rand.Read(key)
	codec, err := refreshtoken.New(key)
	if err != nil {
		return nil, err
	}
	h := &ceilingHandler{codec: codec, priv: priv, pub: pub, kind: kind}
	checkPassword, err := passwordChecker(pw)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if !checkPassword(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.writePair(w, refreshtoken.Token{Session: refreshtoken.NewSessionID()})
	})
	mux.HandleFunc("POST /refresh", h.refresh)
	mux.HandleFunc("GET /protected", h.protected)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &Ceiling{URL: "http://" + ln.Addr().String(), Kind: kind, srv: &http.Server{Handler: mux}}
	go c.srv.Serve(ln)
	return c, nil
}

// Close stops the server.
func (c *Ceiling) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.srv.Shutdown(ctx)
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// refresh is CeilingNoStore: the next generation of the presented token.
func (h *ceilingHandler) refresh(w http.ResponseWriter, r *http.Request) {
	tok, err := h.codec.Decode(bearer(r))
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	tok.Generation++
	h.writePair(w, tok)
}

var fixedBody = []byte(`{"message":"You have access"}` + "\n")

func (h *ceilingHandler) protected(w http.ResponseWriter, r *http.Request) {
	if h.kind == CeilingVerify {
		tok := bearer(r)
		dot := strings.LastIndexByte(tok, '.')
		if dot < 0 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if err != nil || !ed25519.Verify(h.pub, []byte(tok[:dot]), sig) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(fixedBody)
}

// jwtHeader is the encoded JOSE header of every ceiling access token.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"ceiling","typ":"at+jwt"}`))

// writePair signs an access token of latchkey's claims for the session of
// tok and writes a pair of latchkey's shape with tok as the refresh token:
// the same fields, about the same bytes.
func (h *ceilingHandler) writePair(w http.ResponseWriter, tok refreshtoken.Token) {
	enc := base64.RawURLEncoding
	now := time.Now()
	exp := now.Add(15 * time.Minute).Unix()
	sid := hex.EncodeToString(tok.Session[:])
	var jti [16]byte
	rand.Read(jti[:])
	claims := make([]byte, 0, 256)
	claims = append(claims, `{"iss":"http://127.0.0.1","sub":"00000000-0000-4000-8000-000000000000","aud":"latchkey","exp":`...)
	claims = strconv.AppendInt(claims, exp, 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	claims = append(claims, `,"jti":"`...)
	claims = enc.AppendEncode(claims, jti[:])
	claims = append(claims, `","sid":"`...)
	claims = append(claims, sid...)
	claims = append(claims, `"}`...)
	at := make([]byte, 0, 512)
	at = append(at, jwtHeader...)
	at = append(at, '.')
	at = enc.AppendEncode(at, claims)
	sig := ed25519.Sign(h.priv, at)
	at = append(at, '.')
	at = enc.AppendEncode(at, sig)

	b := make([]byte, 0, 1024)
	b = append(b, `{"uuid":"00000000-0000-4000-8000-000000000000","session_id":"`...)
	b = append(b, sid...)
	b = append(b, `","token_type":"Bearer","access_token":"`...)
	b = append(b, at...)
	b = append(b, `","expires_in":900,"expires_at":`...)
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, `,"refresh_token":"`...)
	b = append(b, h.codec.Encode(tok)...)
	b = append(b, `","refresh_expires_at":`...)
	b = strconv.AppendInt(b, now.Add(14*24*time.Hour).Unix(), 10)
	b = append(b, `,"user":{"uuid":"00000000-0000-4000-8000-000000000000","username":"bench"}}`+"\n"...)
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.Write(b)
}
