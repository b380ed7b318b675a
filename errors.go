package latchkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/store"
)

// Code is a public error code of the HTTP API ("token_expired", "refresh_reused", …).
// Codes are part of latchkey's interface: clients branch on them.
type Code string

// The error codes of PRODUCT.md. The HTTP status of each is assigned in one place,
// httpauth.WriteError.
const (
	CodeMissingToken       Code = "missing_token"
	CodeInvalidToken       Code = "invalid_token"
	CodeTokenExpired       Code = "token_expired"
	CodeTokenRevoked       Code = "token_revoked"
	CodeWrongTokenType     Code = "wrong_token_type"
	CodeRefreshReused      Code = "refresh_reused"
	CodeSessionExpired     Code = "session_expired"
	CodeInvalidCredentials Code = "invalid_credentials"
	CodeFreshTokenRequired Code = "fresh_token_required"
	CodeCSRFFailed         Code = "csrf_failed"
	CodeRateLimited        Code = "rate_limited"
	CodeInvalidRequest     Code = "invalid_request"
	CodeWeakPassword       Code = "weak_password"
	CodeUsernameTaken      Code = "username_taken"
	CodeRegistrationClosed Code = "registration_closed"
	CodeNotFound           Code = "not_found"
	CodeMethodNotAllowed   Code = "method_not_allowed"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal_error"

	// The OAuth 2.0 endpoints' own codes (RFC 6749 §5.2); the first-party API
	// never answers them.
	CodeInvalidClient      Code = "invalid_client"
	CodeUnauthorizedClient Code = "unauthorized_client"

	// The DPoP codes (RFC 9449 §5, §7.1, §8): a missing, malformed or
	// wrongly signed proof, or one by another key than the session's; and a
	// proof without the server's current nonce (the answer carries one).
	CodeInvalidDPoPProof Code = "invalid_dpop_proof"
	CodeUseDPoPNonce     Code = "use_dpop_nonce"
)

// Error is the one error type of latchkey's public API. Code is the public code,
// Message a human sentence safe to show to a client, and Err the underlying cause,
// for logs only (it is never sent to a client).
//
// Is compares only the Code, so errors.Is(err, latchkey.ErrTokenExpired) holds
// whatever cause or message is attached.
type Error struct {
	Code    Code
	Message string
	Err     error
	// RetryAfter, on a rate_limited error, is how long the client should wait.
	RetryAfter time.Duration
}

// Error returns the code, the message and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithCause returns a copy of e carrying err as its cause.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// WithMessage returns a copy of e with another client-safe message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// Sentinel errors, one per code, with the default message. Compare with errors.Is.
var (
	ErrMissingToken       = &Error{Code: CodeMissingToken, Message: "No token was presented."}
	ErrInvalidToken       = &Error{Code: CodeInvalidToken, Message: "The token is malformed, forged or unknown."}
	ErrTokenExpired       = &Error{Code: CodeTokenExpired, Message: "The token has expired."}
	ErrTokenRevoked       = &Error{Code: CodeTokenRevoked, Message: "The token belongs to a revoked or logged-out session."}
	ErrWrongTokenType     = &Error{Code: CodeWrongTokenType, Message: "The token is of the wrong type for this request."}
	ErrRefreshReused      = &Error{Code: CodeRefreshReused, Message: "The refresh token was already used; the session has been revoked."}
	ErrSessionExpired     = &Error{Code: CodeSessionExpired, Message: "The session has expired; sign in again."}
	ErrInvalidCredentials = &Error{Code: CodeInvalidCredentials, Message: "The username or password is wrong."}
	ErrFreshTokenRequired = &Error{Code: CodeFreshTokenRequired, Message: "This action needs a fresh access token, straight from a sign-in."}
	ErrCSRFFailed         = &Error{Code: CodeCSRFFailed, Message: "The CSRF check failed."}
	ErrRateLimited        = &Error{Code: CodeRateLimited, Message: "Too many failed attempts; try again later."}
	ErrInvalidRequest     = &Error{Code: CodeInvalidRequest, Message: "The request is malformed."}
	ErrWeakPassword       = &Error{Code: CodeWeakPassword, Message: "The password must be at least 8 characters long."}
	ErrUsernameTaken      = &Error{Code: CodeUsernameTaken, Message: "The username is taken."}
	ErrRegistrationClosed = &Error{Code: CodeRegistrationClosed, Message: "Registration is closed."}
	ErrNotFound           = &Error{Code: CodeNotFound, Message: "Not found."}
	ErrMethodNotAllowed   = &Error{Code: CodeMethodNotAllowed, Message: "Method not allowed."}
	ErrUnavailable        = &Error{Code: CodeUnavailable, Message: "The service is temporarily unavailable."}
	ErrInternal           = &Error{Code: CodeInternal, Message: "Something went wrong on our side."}

	ErrInvalidClient      = &Error{Code: CodeInvalidClient, Message: "The client is unknown or its authentication failed."}
	ErrUnauthorizedClient = &Error{Code: CodeUnauthorizedClient, Message: "The token was issued to another client."}
	ErrInvalidDPoPProof   = &Error{Code: CodeInvalidDPoPProof, Message: "The DPoP proof is missing, malformed or not valid for this request."}
	ErrUseDPoPNonce       = &Error{Code: CodeUseDPoPNonce, Message: "Send the DPoP proof again with the nonce of the DPoP-Nonce header."}
)

// The library's own refinements of the sentinels: each refusal has one
// message, written here once.
var (
	errRefreshMissing      = ErrMissingToken.WithMessage("A refresh token is required.")
	errRefreshMalformed    = ErrInvalidToken.WithMessage("The refresh token is malformed or forged.")
	errAccessForRefresh    = ErrWrongTokenType.WithMessage("An access token was presented where a refresh token is required.")
	errRefreshForAccess    = ErrWrongTokenType.WithMessage("A refresh token was presented where an access token is required.")
	errSessionUnknown      = ErrInvalidToken.WithMessage("The refresh token's session is unknown.")
	errOtherClient         = ErrInvalidToken.WithMessage("The refresh token was issued to another client.")
	errRefreshAhead        = ErrInvalidToken.WithMessage("The refresh token does not match its session's state.")
	errSessionRevoked      = ErrTokenRevoked.WithMessage("The session of this refresh token has been revoked.")
	errEndedByReplay       = ErrRefreshReused.WithMessage("This session was ended because an older refresh token of it was replayed, which means a copy of it was stolen; sign in again.")
	errBindingMissing      = ErrMissingToken.WithMessage("This server requires the session's access token with the refresh token.")
	errBindingOtherSession = ErrInvalidToken.WithMessage("The access token belongs to another session than the refresh token.")
	errAccessExpired       = ErrTokenExpired.WithMessage("The access token has expired.")
	errAccessInvalid       = ErrInvalidToken.WithMessage("The access token is malformed, forged or not for this service.")
	errNotAccess           = ErrWrongTokenType.WithMessage("The token is not an access token.")
	errNoSuchSession       = ErrNotFound.WithMessage("No such session.")
	errDPoPRequired        = ErrInvalidDPoPProof.WithMessage("This session is bound to a DPoP key: send a DPoP proof signed with that key.")
	errDPoPOtherKey        = ErrInvalidDPoPProof.WithMessage("The DPoP proof is signed with another key than the one this session is bound to.")
)

// unavailable is the error for a store that failed.
func unavailable(err error) *Error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ErrUnavailable.WithMessage("The request was cancelled or timed out.").WithCause(err)
	}
	return ErrUnavailable.WithCause(err)
}

// sessionStoreError is the error for a failed read or swap of the session a
// refresh token names: unknown, or the store failed.
func sessionStoreError(err error) *Error {
	if errors.Is(err, store.ErrNotFound) {
		return errSessionUnknown.WithCause(err)
	}
	return unavailable(err)
}
