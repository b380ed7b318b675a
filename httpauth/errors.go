package httpauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// Realm is the realm of every WWW-Authenticate challenge.
const Realm = "latchkey"

// Status returns the HTTP status of an error code. It is the one place codes
// become statuses.
func Status(c latchkey.Code) int {
	switch c {
	case latchkey.CodeMissingToken, latchkey.CodeInvalidToken, latchkey.CodeTokenExpired,
		latchkey.CodeTokenRevoked, latchkey.CodeWrongTokenType, latchkey.CodeRefreshReused,
		latchkey.CodeSessionExpired, latchkey.CodeInvalidCredentials, latchkey.CodeInvalidClient:
		return http.StatusUnauthorized
	case latchkey.CodeFreshTokenRequired, latchkey.CodeCSRFFailed, latchkey.CodeRegistrationClosed:
		return http.StatusForbidden
	case latchkey.CodeRateLimited:
		return http.StatusTooManyRequests
	case latchkey.CodeInvalidRequest, latchkey.CodeWeakPassword, latchkey.CodeUnauthorizedClient,
		latchkey.CodeInvalidDPoPProof, latchkey.CodeUseDPoPNonce:
		return http.StatusBadRequest
	case latchkey.CodeUsernameTaken:
		return http.StatusConflict
	case latchkey.CodeNotFound:
		return http.StatusNotFound
	case latchkey.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case latchkey.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON shape of every failure.
type errorBody struct {
	Error   latchkey.Code `json:"error"`
	Message string        `json:"message"`
}

// AsError returns err as a *latchkey.Error; anything else becomes
// latchkey.ErrInternal with err as its cause.
func AsError(err error) *latchkey.Error {
	var e *latchkey.Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return latchkey.ErrInternal.WithCause(err)
}

// WriteError writes err as the API's JSON error with its status. A 401 carries
// `WWW-Authenticate: Bearer realm="latchkey"`, with error="invalid_token" and an
// error_description when a presented token was refused (RFC 6750 §3); a 429
// carries Retry-After. Only the error's own message is sent, never its cause.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	status := Status(e.Code)
	if e.Message == "" {
		e = e.WithMessage(http.StatusText(status)) // the body and the challenge say the same
	}
	h := w.Header()
	var dc *dpopChallenge
	switch {
	case e.Code != latchkey.CodeInternal && errors.As(err, &dc):
		// A protected request refused over DPoP: 401 whatever the code
		// (RFC 9449 §7.1).
		status = http.StatusUnauthorized
		h.Set("WWW-Authenticate", dpopWWWAuthenticate(e, nil))
	case status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", challenge(e))
	}
	if e.Code == latchkey.CodeRateLimited {
		wait := min(max(e.RetryAfter, 0), 24*time.Hour) // no overflow, no absurd advice
		secs := int64((wait + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	msg := e.Message
	WriteJSON(w, status, errorBody{Error: e.Code, Message: msg})
}

// challenge builds the RFC 6750 challenge for a 401.
func challenge(e *latchkey.Error) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="` + Realm + `"`)
	switch e.Code {
	case latchkey.CodeMissingToken, latchkey.CodeInvalidCredentials, latchkey.CodeInvalidClient:
		// No token was presented (or none is involved): no error attribute (§3.1).
	default:
		b.WriteString(`, error="invalid_token", error_description=`)
		b.WriteString(quote(e.Message))
	}
	return b.String()
}

// quote makes s a quoted-string whose content RFC 6750 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E): anything else is replaced,
// so nothing can break out of the header value.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\'')
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// WriteJSON writes v as JSON with status. Responses are never cached: they may
// carry tokens or per-user data.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	jsonHeader(w.Header())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteRawJSON is WriteJSON for a body already encoded: a fixed answer costs
// no encoding per request.
func WriteRawJSON(w http.ResponseWriter, status int, body []byte) {
	jsonHeader(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// The header values of every JSON answer, shared: net/http only reads them,
// and Set or Add elsewhere replaces a value rather than writing into it.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
)

// jsonHeader sets the headers of a JSON answer: its type, no caching, and no
// type sniffing. The keys are in canonical form already.
func jsonHeader(h http.Header) {
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
}
