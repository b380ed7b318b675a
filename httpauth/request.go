package httpauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 64 << 10

// DecodeJSON reads the request body into v under the API's rules: media type
// application/json (parameters such as charset allowed), at most MaxBody bytes,
// exactly one JSON value and nothing after it; unknown fields are ignored. An
// empty body decodes as {} when allowEmpty is set. Every failure is
// latchkey.ErrInvalidRequest with a message saying what is wrong.
func DecodeJSON(r *http.Request, v any, allowEmpty bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return latchkey.ErrInvalidRequest.WithMessage("The request body must be a JSON object.")
	}
	if err := checkJSONType(r); err != nil {
		return err
	}
	return decodeBytes(body, v)
}

func checkJSONType(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return latchkey.ErrInvalidRequest.WithMessage("The request body must be sent as Content-Type: application/json.")
	}
	return nil
}

func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return latchkey.ErrInvalidRequest.WithMessage("The field " + typeErr.Field + " has the wrong type.").WithCause(err)
		}
		return latchkey.ErrInvalidRequest.WithMessage("The request body is not valid JSON.").WithCause(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return latchkey.ErrInvalidRequest.WithMessage("The request body must hold exactly one JSON value.")
	}
	return nil
}

// bufferedBody is a request body already read into memory.
type bufferedBody struct {
	*bytes.Reader
	b []byte
}

func (*bufferedBody) Close() error { return nil }

// readBody reads the whole body once (at most MaxBody bytes) and puts it back,
// so middleware and handler can both read it.
func readBody(r *http.Request) ([]byte, error) {
	if bb, ok := r.Body.(*bufferedBody); ok {
		r.Body = &bufferedBody{bytes.NewReader(bb.b), bb.b}
		return bb.b, nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	r.Body.Close()
	if err != nil {
		return nil, latchkey.ErrInvalidRequest.WithMessage("The request body could not be read.").WithCause(err)
	}
	if len(b) > MaxBody {
		r.Body = http.NoBody
		return nil, latchkey.ErrInvalidRequest.WithMessage("The request body is larger than 64 KiB.")
	}
	r.Body = &bufferedBody{bytes.NewReader(b), b}
	return b, nil
}

// bearer returns the token of an "Authorization: Bearer <token>" or
// "Authorization: DPoP <token>" header (RFC 9449 §7.1), "" if the request has
// no such credentials.
func bearer(r *http.Request) (string, error) {
	tok, _, err := authorization(r)
	return tok, err
}

// authorization is bearer that also reports whether the scheme was DPoP.
func authorization(r *http.Request) (tok string, dpopScheme bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
	dpopScheme = strings.EqualFold(scheme, "DPoP")
	if !dpopScheme && !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil // another scheme is not ours to judge
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", false, nil
	}
	if !isToken68(tok) {
		return "", false, latchkey.ErrInvalidToken.WithMessage("The Authorization header does not hold a well-formed token.")
	}
	return tok, dpopScheme, nil
}

// isToken68 reports whether s is an RFC 7235 token68.
func isToken68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
