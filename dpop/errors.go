package dpop

import "fmt"

// The error codes a refused proof carries. The HTTP layer maps each to a status
// and a WWW-Authenticate challenge in one place.
const (
	// CodeInvalidProof: the DPoP proof is missing, malformed, badly signed,
	// for another request, stale, or replayed (RFC 9449 §7.1 and §5).
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeUseNonce: the proof lacks the server nonce, or carries one that is
	// expired or not ours; the client retries with the nonce of the DPoP-Nonce
	// response header (RFC 9449 §8 and §9).
	CodeUseNonce = "use_dpop_nonce"
	// CodeInvalidToken: the proof is valid but the access token is not bound
	// to its key (RFC 9449 §7.1), so it is the token that is refused.
	CodeInvalidToken = "invalid_token"
)

// Error is a refused proof. Code is one of the Code constants; Message is a
// sentence safe to show to a client, written by this package and never quoting
// the proof; Err, when set, is a cause for logs.
//
// Is compares only the Code, so errors.Is(err, ErrInvalidProof) holds whatever
// the message.
type Error struct {
	Code    string
	Message string
	Err     error
}

// The sentinels to compare refusals with errors.Is.
var (
	// ErrInvalidProof matches every invalid_dpop_proof refusal.
	ErrInvalidProof = &Error{Code: CodeInvalidProof, Message: "the DPoP proof is invalid"}
	// ErrUseNonce matches every use_dpop_nonce refusal.
	ErrUseNonce = &Error{Code: CodeUseNonce, Message: "the DPoP proof must carry the server's current nonce"}
	// ErrKeyMismatch is VerifyBound's refusal of a valid proof by another
	// key than the token's (code invalid_token).
	ErrKeyMismatch = &Error{Code: CodeInvalidToken, Message: "the access token is not bound to the key of the DPoP proof"}
)

// Error returns the code, the message and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dpop: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("dpop: %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// invalid is an invalid_dpop_proof refusal saying why.
func invalid(msg string) *Error { return &Error{Code: CodeInvalidProof, Message: msg} }
