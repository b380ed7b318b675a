package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store"
)

// eventJSON is one entry of GET /me/events.
type eventJSON struct {
	ID          string          `json:"id"`
	At          int64           `json:"at"`
	Kind        string          `json:"kind"`
	Description string          `json:"description"`
	Actor       string          `json:"actor"`
	SessionID   string          `json:"session_id,omitempty"`
	IP          string          `json:"ip,omitempty"`
	UserAgent   string          `json:"user_agent,omitempty"`
	Detail      json.RawMessage `json:"detail,omitempty"`
}

// recentEvents is how many events a user is shown.
const recentEvents = 50

// myEvents is GET /me/events: the caller's recent security events, newest
// first.
func (s *Server) myEvents(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	evs, err := s.audit.Events(r.Context(), store.EventFilter{UserID: p.UserID, Limit: recentEvents})
	if err != nil {
		s.writeError(w, r, latchkey.ErrUnavailable.WithCause(err))
		return
	}
	out := make([]eventJSON, 0, len(evs))
	for _, ev := range evs {
		l := audit.LineOf(ev)
		out = append(out, eventJSON{ID: ev.ID, At: ev.At.Unix(), Kind: ev.Kind, Description: audit.Describe(ev), Actor: ev.Actor,
			SessionID: ev.SessionID, IP: ev.IP, UserAgent: ev.UserAgent, Detail: l.Detail})
	}
	httpauth.WriteJSON(w, http.StatusOK, map[string][]eventJSON{"events": out})
}

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
