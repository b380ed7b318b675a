package server

import (
	"context"
	"net/http"

	"github.com/latchkey/latchkey"
)

// The kinds of event the server reports to Config.Observer, beside Auth's.
const (
	// EventSignIn is a sign-in attempt through a grant: Outcome "success" or
	// "failure" (Message says why), Grant, and the user when known.
	EventSignIn latchkey.EventKind = "sign_in"
	// EventRateLimited is an attempt refused by the login rate limit.
	EventRateLimited latchkey.EventKind = "rate_limited"
	// EventPasswordChanged is a password change; the user's other sessions end.
	EventPasswordChanged latchkey.EventKind = "password_changed"
	// EventUserCreated is a new account: registration or a provider sign-up.
	EventUserCreated latchkey.EventKind = "user_created"
	// EventIdentityLinked and EventIdentityUnlinked are links to provider
	// identities made and removed; Message names the provider.
	EventIdentityLinked   latchkey.EventKind = "identity_linked"
	EventIdentityUnlinked latchkey.EventKind = "identity_unlinked"
)

// Outcomes of EventSignIn.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// event reports e, stamped with the request's address and user agent, to
// the configured observer.
func (s *Server) event(r *http.Request, e latchkey.Event) {
	if s.obs == nil {
		return
	}
	if e.IP == "" {
		e.IP = s.trusted.ClientIP(r)
	}
	if e.UserAgent == "" {
		e.UserAgent = r.UserAgent()
	}
	s.emit(r.Context(), e)
}

// emit reports e to the configured observer; the actor is the user unless
// e says otherwise.
func (s *Server) emit(ctx context.Context, e latchkey.Event) {
	if s.obs == nil {
		return
	}
	if e.At.IsZero() {
		e.At = s.auth.Config().Now()
	}
	if e.Actor == "" {
		e.Actor = "user"
	}
	s.obs.Observe(context.WithoutCancel(ctx), e)
}
