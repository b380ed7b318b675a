package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/text"
)

// Names of the built-in grants.
const (
	grantPassword = "password"
	grantIDToken  = "id_token"
)

// passwordGrant checks a username and password (POST /login's
// {"username","password"}, OAuth's password grant).
func (s *Server) passwordGrant() grant.Grant {
	return grant.Grant{
		Name:      grantPassword,
		OAuthType: "password",
		Fresh:     true,
		Account:   func(p grant.Params) string { return accountKey(p.Get("username")) },
		Resolve: func(ctx context.Context, r grant.Request) (grant.User, error) {
			name, pw := r.Params.Get("username"), r.Params.Get("password")
			if name == "" || pw == "" {
				return grant.User{}, latchkey.ErrInvalidRequest.WithMessage("Both username and password are required.")
			}
			u, err := s.users.Authenticate(ctx, name, pw)
			if errors.Is(err, latchkey.ErrInvalidCredentials) {
				// Name the account for its owner's audit trail (never in the
				// answer, which is the same for every failure).
				if known, lookupErr := s.users.ByName(ctx, name); lookupErr == nil {
					return grant.User{ID: known.ID}, err
				}
			}
			if err != nil {
				return grant.User{}, err
			}
			return grant.User{ID: u.ID, Username: u.Username}, nil
		},
	}
}

// signIn runs one sign-in through grant g (see resolve) and starts a fresh
// session for client (zero: first-party).
// The session is bound to the DPoP key with thumbprint jkt, unless jkt is "".
func (s *Server) signIn(r *http.Request, g grant.Grant, params grant.Params, client latchkey.Client, jkt string) (*latchkey.Tokens, userJSON, error) {
	u, err := s.resolve(r, g, params, client.ID != "")
	if err != nil {
		return nil, userJSON{}, err
	}
	ip := s.trusted.ClientIP(r)
	t, err := s.auth.Login(r.Context(), u.ID, latchkey.LoginOptions{Fresh: g.Fresh, UserAgent: r.UserAgent(), IP: ip, Client: client, JKT: jkt})
	if err != nil {
		return nil, userJSON{}, err
	}
	s.log.Info("login", "grant", g.Name, "user", u.ID, "session", t.SessionID, "client", client.ID)
	return t, userJSON{UUID: u.ID, Username: u.Username}, nil
}

// resolve runs g's Resolve under the login rate limit. Wrong credentials
// (invalid_credentials, invalid_token) count against the limit; a success
// forgets the failures; anything else (a malformed request, a store that is
// down) neither counts nor forgets.
func (s *Server) resolve(r *http.Request, g grant.Grant, params grant.Params, oauth bool) (grant.User, error) {
	ip := s.trusted.ClientIP(r)
	account := g.AccountOf(params)
	if account != "" {
		account = g.Name + "\x00" + account // each grant's accounts apart
	}
	attempt, wait, ok := s.limit.Begin(account, ip)
	if !ok {
		s.event(r, latchkey.Event{Kind: latchkey.EventRateLimited, Grant: g.Name, IP: ip})
		return grant.User{}, rateLimited(wait)
	}
	u, err := g.Resolve(r.Context(), grant.Request{Params: params, IP: ip, UserAgent: r.UserAgent(), OAuth: oauth})
	switch {
	case err == nil:
		attempt.Succeed()
		s.event(r, latchkey.Event{Kind: latchkey.EventSignIn, Outcome: latchkey.OutcomeSuccess, Grant: g.Name, UserID: u.ID, IP: ip})
	case errors.Is(err, latchkey.ErrInvalidCredentials) || errors.Is(err, latchkey.ErrInvalidToken):
		attempt.Fail()
		msg := httpauth.AsError(err).Message
		s.log.Info("login failed", "grant", g.Name, "ip", ip, "reason", msg)
		s.event(r, latchkey.Event{Kind: latchkey.EventSignIn, Outcome: latchkey.OutcomeFailure, Grant: g.Name, Message: msg, UserID: u.ID, IP: ip})
	default:
		attempt.Release()
	}
	return u, err
}

// loginParams are the fields of POST /login's JSON body. A field that is not
// a string reads as absent; the handler then says which field had the wrong
// type rather than that it is missing.
type loginParams struct {
	str map[string]string
	bad map[string]bool

	mu   sync.Mutex
	read []string // bad fields a grant asked for
}

func (p *loginParams) Get(name string) string {
	if p.bad[name] {
		p.mu.Lock()
		p.read = append(p.read, name)
		p.mu.Unlock()
	}
	return p.str[name]
}

// wrongType is the error for the first non-string field a grant read.
func (p *loginParams) wrongType() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.read) == 0 {
		return nil
	}
	return latchkey.ErrInvalidRequest.WithMessage("The field " + p.read[0] + " has the wrong type; it must be a string.")
}

// decodeLogin reads POST /login's body: string fields for the grant, and the
// boolean "cookies".
func decodeLogin(r *http.Request) (*loginParams, bool, error) {
	var fields map[string]json.RawMessage
	if err := httpauth.DecodeJSON(r, &fields, false); err != nil {
		return nil, false, err
	}
	if fields == nil {
		return nil, false, latchkey.ErrInvalidRequest.WithMessage("The request body must be a JSON object.")
	}
	p := &loginParams{str: map[string]string{}, bad: map[string]bool{}}
	var cookies bool
	for k, v := range fields {
		if k == "cookies" {
			if err := json.Unmarshal(v, &cookies); err != nil {
				return nil, false, latchkey.ErrInvalidRequest.WithMessage("The field cookies has the wrong type; it must be true or false.")
			}
			continue
		}
		var sv string
		if json.Unmarshal(v, &sv) == nil {
			p.str[k] = sv
		} else {
			p.bad[k] = true
		}
	}
	return p, cookies, nil
}

// loginGrant is the grant a POST /login body selects: its "grant" field, or
// the ID-token grant for a body with "provider" or "id_token", or the password.
func (s *Server) loginGrant(p grant.Params) (grant.Grant, error) {
	name := p.Get("grant")
	if name == "" {
		name = grantPassword
		if p.Get("provider") != "" || p.Get("id_token") != "" {
			name = grantIDToken
		}
	}
	g, err := s.grants.Named(name)
	if err != nil {
		return grant.Grant{}, latchkey.ErrInvalidRequest.WithMessage("There is no sign-in grant " + text.Quote(name, 64) + " on this server.")
	}
	return g, nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	p, cookies, err := decodeLogin(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if cookies && !s.mw.CookiesEnabled() {
		s.writeError(w, r, latchkey.ErrInvalidRequest.WithMessage("Cookie mode is off on this server (--token-locations has no cookies)."))
		return
	}
	g, err := s.loginGrant(p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	jkt, err := s.signInProof(w, r, cookies, s.dpop.Required)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, u, err := s.signIn(r, g, p, latchkey.Client{}, jkt)
	if err != nil {
		if wt := p.wrongType(); wt != nil {
			err = wt
		}
		s.writeError(w, r, err)
		return
	}
	if cookies {
		s.mw.SetCookies(w, t)
	}
	s.writePair(w, t, u, cookies)
}

// signInProof checks the DPoP proof of a sign-in and returns its key's
// thumbprint, "" without one; required refuses a sign-in without a proof.
// Cookie mode takes none: a cookie session is bound to its browser, and a
// DPoP-bound access cookie could not be used by the page.
func (s *Server) signInProof(w http.ResponseWriter, r *http.Request, cookies, required bool) (string, error) {
	if cookies {
		if len(r.Header.Values("DPoP")) > 0 {
			return "", latchkey.ErrInvalidRequest.WithMessage("DPoP and cookie mode do not combine: a cookie session is bound to its browser. Leave out the DPoP header or \"cookies\".")
		}
		return "", nil
	}
	jkt, err := s.mw.VerifyProof(w, r, !s.dpop.NoNonce)
	if err == nil && jkt == "" && required {
		if v := s.mw.DPoP(); v != nil {
			if n := v.Nonce(); n != "" {
				w.Header().Set(httpauth.NonceHeader, n)
			}
		}
		err = errProofRequired
	}
	return jkt, err
}

// errProofRequired refuses a sign-in without a DPoP proof where one is required.
var errProofRequired = latchkey.ErrInvalidDPoPProof.WithMessage("This server requires a DPoP proof (RFC 9449) with every sign-in; " +
	"send one in the DPoP header.")
