package httpauth

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/dpop"
)

// NonceHeader is the response header that carries the server's current DPoP
// nonce (RFC 9449 §8).
const NonceHeader = "DPoP-Nonce"

// The refusals of a protected request whose token and proof do not agree.
var (
	errBoundAsBearer = latchkey.ErrInvalidToken.WithMessage("This access token is bound to a DPoP key: " +
		"send it as \"Authorization: DPoP <token>\" with a DPoP proof signed by that key.")
	errUnboundAsDPoP  = latchkey.ErrInvalidToken.WithMessage("This access token is not bound to a DPoP key: send it with the Bearer scheme.")
	errBoundElsewhere = latchkey.ErrInvalidToken.WithMessage("A DPoP-bound access token is accepted only in the Authorization header.")
	errNoDPoP         = latchkey.ErrInvalidDPoPProof.WithMessage("This server does not accept DPoP proofs.")
)

// dpopChallenge marks the refusal of a protected request that involves DPoP:
// WriteError answers it 401 with a DPoP challenge (RFC 9449 §7.1) instead of
// a Bearer one.
type dpopChallenge struct{ err *latchkey.Error }

func (c *dpopChallenge) Error() string { return c.err.Error() }
func (c *dpopChallenge) Unwrap() error { return c.err }

// ProofError is the API's error for a DPoP proof that Verify or VerifyBound
// refused: invalid_dpop_proof, use_dpop_nonce, or invalid_token for a proof
// by another key than the token's. An error that is not a refusal (the store
// that records proofs failed) is unavailable.
func ProofError(err error) *latchkey.Error {
	var e *dpop.Error
	if !errors.As(err, &e) {
		return latchkey.ErrUnavailable.WithCause(err)
	}
	msg := sentence(e.Message)
	switch e.Code {
	case dpop.CodeUseNonce:
		return latchkey.ErrUseDPoPNonce.WithMessage(msg + " Send it again with the nonce of the " + NonceHeader + " header.").WithCause(err)
	case dpop.CodeInvalidToken:
		return latchkey.ErrInvalidToken.WithMessage(msg).WithCause(err)
	default:
		return latchkey.ErrInvalidDPoPProof.WithMessage(msg).WithCause(err)
	}
}

// sentence is msg with a capital and a full stop.
func sentence(msg string) string {
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// VerifyProof checks the DPoP proof of a request to a token endpoint (one
// that issues tokens: a sign-in, a refresh) and returns its key's
// thumbprint, or "" when the request carries no DPoP header. requireNonce
// demands the server's current nonce in the proof. Whatever the outcome, the
// current nonce goes in the DPoP-Nonce response header when nonces are on,
// so a client learns it from a refusal (use_dpop_nonce) and keeps it
// current from each answer.
func (m *Middleware) VerifyProof(w http.ResponseWriter, r *http.Request, requireNonce bool) (string, error) {
	proofs := r.Header.Values("DPoP")
	if len(proofs) == 0 {
		return "", nil
	}
	if m.dpop == nil {
		return "", errNoDPoP
	}
	if n := m.dpop.Nonce(); n != "" {
		w.Header().Set(NonceHeader, n)
	}
	p, err := m.dpop.Verify(r.Context(), dpop.Request{Method: r.Method, URL: m.proxies.RequestURL(r), Proofs: proofs, RequireNonce: requireNonce})
	if err != nil {
		return "", ProofError(err)
	}
	return p.JKT, nil
}

// DPoP returns the verifier of DPoP proofs (Config.DPoP), or nil.
func (m *Middleware) DPoP() *dpop.Verifier { return m.dpop }

// checkSender holds a protected request to its token's binding: a token
// bound to a DPoP key (cnf.jkt) must come in the Authorization header with
// the DPoP scheme and a proof by that key for this request, carrying ath; an
// unbound token must not claim the DPoP scheme. On success p says the request
// was sender-constrained.
func (m *Middleware) checkSender(r *http.Request, tok string, from Location, p *latchkey.Principal) error {
	dpopScheme := false
	if from == Headers {
		_, dpopScheme, _ = authorization(r)
	}
	switch {
	case p.JKT == "" && !dpopScheme:
		return nil
	case p.JKT == "":
		return &dpopChallenge{errUnboundAsDPoP}
	case from != Headers:
		return &dpopChallenge{errBoundElsewhere}
	case !dpopScheme:
		return &dpopChallenge{errBoundAsBearer}
	case m.dpop == nil:
		return &dpopChallenge{errNoDPoP}
	}
	req := dpop.Request{Method: r.Method, URL: m.proxies.RequestURL(r), Proofs: r.Header.Values("DPoP"), AccessToken: tok}
	if _, err := m.dpop.VerifyBound(r.Context(), req, p.JKT); err != nil {
		e := ProofError(err)
		if errors.Is(e, latchkey.ErrUnavailable) {
			return e
		}
		return &dpopChallenge{e}
	}
	p.SenderConstrained = true
	return nil
}

// dpopWWWAuthenticate is the challenge of a refused DPoP request (RFC 9449
// §7.1): the error is the refusal's code, as that section names them.
func dpopWWWAuthenticate(e *latchkey.Error, algs []string) string {
	var b strings.Builder
	b.WriteString(`DPoP realm="` + Realm + `"`)
	if len(algs) > 0 {
		b.WriteString(`, algs="` + strings.Join(algs, " ") + `"`)
	}
	code := string(e.Code)
	if e.Code != latchkey.CodeInvalidDPoPProof && e.Code != latchkey.CodeUseDPoPNonce {
		code = string(latchkey.CodeInvalidToken)
	}
	b.WriteString(`, error="` + code + `", error_description=`)
	b.WriteString(quote(e.Message))
	return b.String()
}
