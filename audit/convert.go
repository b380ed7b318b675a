package audit

import (
	"encoding/json"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/text"
	"github.com/latchkey/latchkey/store"
)

// detail is the kind-specific part of an event, stored as JSON.
type detail struct {
	Reason     string `json:"reason,omitempty"`
	Grant      string `json:"grant,omitempty"`
	Message    string `json:"message,omitempty"`
	ClientID   string `json:"client_id,omitempty"`
	Generation uint64 `json:"generation,omitempty"`
	Current    uint64 `json:"current_generation,omitempty"`
	Provider   string `json:"provider,omitempty"`
}

// Convert turns a security-relevant event of Auth or the server into an
// audit event; ok is false for the others (refreshes, verifications, store
// calls), which are for metrics. Auth's own "login" is left to the server's
// sign-in event, which knows the grant.
func Convert(e latchkey.Event) (ev store.Event, ok bool) {
	d := detail{ClientID: e.ClientID}
	switch e.Kind {
	case latchkey.EventSignIn:
		ev.Kind, d.Grant = KindLogin, e.Grant
		if e.Outcome != latchkey.OutcomeSuccess {
			ev.Kind, d.Message = KindLoginFailed, e.Message
		}
	case latchkey.EventReuse:
		ev.Kind, d.Generation, d.Current = KindRefreshReused, e.Generation, e.Current
	case latchkey.EventRevoke:
		ev.Kind, d.Reason = KindSessionRevoked, string(e.Reason)
	case latchkey.EventPasswordChanged:
		ev.Kind = KindPasswordChanged
	case latchkey.EventUserCreated:
		ev.Kind, d.Grant, d.Provider = KindUserCreated, e.Grant, e.Message
	case latchkey.EventRateLimited:
		ev.Kind, d.Grant = KindRateLimited, e.Grant
	case latchkey.EventIdentityLinked:
		ev.Kind, d.Provider = KindIdentityLinked, e.Message
	case latchkey.EventIdentityUnlinked:
		ev.Kind = KindIdentityUnlinked
	default:
		return store.Event{}, false
	}
	ev.ID, ev.At, ev.Actor = NewID(), e.At, e.Actor
	if ev.Actor == "" {
		ev.Actor = "user"
	}
	// Request headers may hold any bytes; the store (PostgreSQL's text, for
	// one) takes valid UTF-8 only, and one bad event must not sink a batch.
	ev.UserID, ev.SessionID, ev.IP, ev.UserAgent = e.UserID, e.SessionID, text.Clean(e.IP, 64), text.Clean(e.UserAgent, 256)
	d.Message = text.Clean(d.Message, 512)
	if b, err := json.Marshal(d); err == nil && string(b) != "{}" {
		ev.Detail = string(b)
	}
	return ev, true
}

// Describe is a sentence a user can read about an event of theirs.
func Describe(ev store.Event) string {
	var d detail
	json.Unmarshal([]byte(ev.Detail), &d)
	switch ev.Kind {
	case KindLogin:
		return "Signed in" + with(d)
	case KindLoginFailed:
		return "A sign-in failed" + with(d)
	case KindRefreshReused:
		return "A stolen or copied refresh token was replayed; that device was signed out."
	case KindSessionRevoked:
		switch latchkey.Reason(d.Reason) {
		case latchkey.ReasonReused:
			return "A session was ended because its refresh token was replayed."
		case latchkey.ReasonPasswordChanged:
			return "A session was signed out after the password changed."
		case latchkey.ReasonAdmin:
			return "An administrator signed a session out."
		}
		return "A session was signed out."
	case KindPasswordChanged:
		return "The password was changed; other sessions were signed out."
	case KindUserCreated:
		return "The account was created" + with(d)
	case KindUserDisabled:
		return "An administrator disabled the account."
	case KindUserEnabled:
		return "An administrator enabled the account."
	case KindRateLimited:
		return "Sign-ins were paused after too many failed attempts."
	case KindIdentityLinked:
		return "A sign-in with " + or(d.Provider, "another provider") + " was linked to the account."
	case KindIdentityUnlinked:
		return "A sign-in with another provider was unlinked from the account."
	}
	return ev.Kind
}

func with(d detail) string {
	switch {
	case d.Provider != "":
		return " with " + d.Provider + "."
	case d.Grant == "password":
		return " with a password."
	case d.Grant == "id_token":
		return " with another provider."
	case d.Grant != "":
		return " (" + d.Grant + ")."
	}
	return "."
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
