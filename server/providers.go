package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/text"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/users"
)

// RFC 8693 names.
const (
	tokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDTok  = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeAccess = "urn:ietf:params:oauth:token-type:access_token"
)

// flowPurpose names the key of the browser sign-in's state cookie.
const flowPurpose = "provider sign-in flow v1"

// setupGrants builds the server's grants: the password, the ID token when
// providers are configured, then the application's own.
func (s *Server) setupGrants(cfg Config) error {
	gs := []grant.Grant{s.passwordGrant()}
	s.providers, s.byIssuer = map[string]*provider.Provider{}, map[string]*provider.Provider{}
	for _, p := range cfg.Providers {
		if _, dup := s.providers[p.Name()]; dup {
			return errors.New("server: two providers are named " + p.Name())
		}
		if _, dup := s.byIssuer[p.Issuer()]; dup {
			return errors.New("server: two providers have the issuer " + p.Issuer())
		}
		s.providers[p.Name()], s.byIssuer[p.Issuer()] = p, p
	}
	if len(s.providers) > 0 {
		if cfg.Markers == nil {
			return errors.New("server: Config.Markers is required with Providers (ID tokens are single use on every node)")
		}
		if !cfg.Users.KeepsIdentities() {
			return errors.New("server: Providers need a users store that offers store.Identities")
		}
		key, err := s.auth.DeriveKey(flowPurpose)
		if err != nil {
			return err
		}
		s.markers, s.signup, s.flowKey = cfg.Markers, cfg.ProviderSignup, key
		gs = append(gs, s.idTokenGrant())
	}
	set, err := grant.NewSet(append(gs, cfg.Grants...)...)
	if err != nil {
		return err
	}
	s.grants = set
	return nil
}

// claimsSource yields the verified, single-use identity behind a request:
// an ID token in the request, or the browser flow's code.
type claimsSource func(ctx context.Context, r grant.Request) (provider.Claims, error)

// idTokenGrant signs in with an ID token of a configured provider: POST
// /login's {"provider","id_token","nonce"}, and the RFC 8693 token exchange
// with an ID token as the subject token.
func (s *Server) idTokenGrant() grant.Grant {
	g := s.providerSignIn(s.idTokenClaims)
	g.OAuthType = tokenExchange
	return g
}

// idTokenClaims verifies the ID token of a request and records it as used.
func (s *Server) idTokenClaims(ctx context.Context, r grant.Request) (provider.Claims, error) {
	p, raw, nonce, err := s.idTokenParams(r)
	if err != nil {
		return provider.Claims{}, err
	}
	return s.verifyOnce(ctx, p, raw, nonce)
}

// providerSignIn is the grant that signs in to the account linked to the
// identity claims yields, creating it when provider sign-up is open.
func (s *Server) providerSignIn(claims claimsSource) grant.Grant {
	return grant.Grant{
		Name:  grantIDToken,
		Fresh: true, // the user has just signed in at the provider
		Resolve: func(ctx context.Context, r grant.Request) (grant.User, error) {
			c, err := claims(ctx, r)
			if err != nil {
				return grant.User{}, err
			}
			u, created, err := s.users.SignInWith(ctx, outside(c), s.signup)
			if err != nil {
				return grant.User{}, err
			}
			if created {
				s.log.Info("user signed up with a provider", "user", u.ID, "provider", c.Provider)
				s.emit(ctx, latchkey.Event{Kind: latchkey.EventUserCreated, UserID: u.ID, Grant: grantIDToken, Message: c.Provider, IP: r.IP, UserAgent: r.UserAgent})
			}
			return grant.User{ID: u.ID, Username: u.Username}, nil
		},
	}
}

// providerLink is the check that links the identity claims yields to userID
// (into *linked when not nil), rate limited per user like a sign-in.
func (s *Server) providerLink(userID string, claims claimsSource, linked *store.Identity) grant.Grant {
	return grant.Grant{Name: "link", Account: func(grant.Params) string { return "link\x00" + userID },
		Resolve: func(ctx context.Context, r grant.Request) (grant.User, error) {
			c, err := claims(ctx, r)
			if err != nil {
				return grant.User{}, err
			}
			id, err := s.users.Link(ctx, userID, outside(c))
			if err == nil {
				s.log.Info("identity linked", "user", userID, "provider", id.Provider, "identity", id.ID)
				s.emit(ctx, latchkey.Event{Kind: latchkey.EventIdentityLinked, UserID: userID, Message: s.providerName(id.Provider), IP: r.IP, UserAgent: r.UserAgent})
				if linked != nil {
					*linked = id
				}
			}
			return grant.User{ID: userID}, err
		}}
}

// idTokenParams reads the provider, the ID token and the nonce of a request:
// POST /login's fields, or a token exchange's form, whose provider is the
// one whose issuer the token names.
func (s *Server) idTokenParams(r grant.Request) (p *provider.Provider, raw, nonce string, err error) {
	f := r.Params
	if !r.OAuth {
		raw, nonce = f.Get("id_token"), f.Get("nonce")
		if raw == "" || f.Get("provider") == "" {
			return nil, "", "", latchkey.ErrInvalidRequest.WithMessage("Both provider and id_token are required.")
		}
		p, err = s.provider(f.Get("provider"))
		return p, raw, nonce, err
	}
	switch {
	case f.Get("subject_token") == "" || f.Get("subject_token_type") == "":
		return nil, "", "", oauthInvalidRequest("Both subject_token and subject_token_type are required.")
	case f.Get("subject_token_type") != tokenTypeIDTok:
		return nil, "", "", oauthInvalidRequest("The subject_token_type must be " + tokenTypeIDTok + ".")
	case f.Get("actor_token") != "" || f.Get("actor_token_type") != "":
		return nil, "", "", oauthInvalidRequest("Delegation (actor_token) is not supported.")
	case f.Get("requested_token_type") != "" && f.Get("requested_token_type") != tokenTypeAccess:
		return nil, "", "", oauthInvalidRequest("The only requested_token_type is " + tokenTypeAccess + ".")
	case f.Get("audience") != "" && f.Get("audience") != s.auth.Config().Audience,
		f.Get("resource") != "" && f.Get("resource") != s.auth.Config().Issuer:
		return nil, "", "", &oauthError{status: http.StatusBadRequest, code: "invalid_target",
			description: "The audience or resource is not this server."}
	}
	raw, nonce = f.Get("subject_token"), f.Get("nonce")
	if name := f.Get("provider"); name != "" {
		p, err = s.provider(name)
		return p, raw, nonce, err
	}
	p, ok := s.byIssuer[provider.IssuerOf(raw)]
	if !ok {
		return nil, "", "", latchkey.ErrInvalidToken.WithMessage("The subject token was not issued by a provider this server trusts.")
	}
	return p, raw, nonce, nil
}

// provider returns the configured provider called name.
func (s *Server) provider(name string) (*provider.Provider, error) {
	p, ok := s.providers[name]
	if !ok {
		return nil, latchkey.ErrInvalidRequest.WithMessage("There is no provider " + text.Quote(name, 64) + " on this server.")
	}
	return p, nil
}

// verifyOnce verifies an ID token and records it as used: a token signs in
// (or links) once, on every node of the store, for as long as it is valid.
func (s *Server) verifyOnce(ctx context.Context, p *provider.Provider, raw, nonce string) (provider.Claims, error) {
	c, err := p.Verify(ctx, raw, nonce)
	if err != nil {
		return provider.Claims{}, err
	}
	return c, s.markUsed(ctx, c)
}

// markUsed records a verified token's replay key.
func (s *Server) markUsed(ctx context.Context, c provider.Claims) error {
	err := s.markers.Mark(ctx, c.ReplayKey, s.auth.Config().Now(), c.ReplayUntil)
	if errors.Is(err, store.ErrExists) {
		return latchkey.ErrInvalidToken.WithMessage("This ID token has been used already; get a new one from the provider.")
	}
	if err != nil {
		return latchkey.ErrUnavailable.WithCause(err)
	}
	return nil
}

func outside(c provider.Claims) users.Outside {
	return users.Outside{Issuer: c.Issuer, Provider: c.Provider, Subject: c.Subject, Email: c.Email}
}

// identityJSON is a linked identity as the API shows it.
type identityJSON struct {
	ID        string `json:"id"`
	Provider  string `json:"provider"`
	Subject   string `json:"subject"`
	Email     string `json:"email"`
	CreatedAt int64  `json:"created_at"`
}

// identityOf shows an identity; its provider by the configured name when the
// issuer it was linked with is still configured, else by that issuer.
func (s *Server) identityOf(id store.Identity) identityJSON {
	return identityJSON{ID: id.ID, Provider: s.providerName(id.Provider), Subject: id.Subject, Email: id.Email, CreatedAt: id.CreatedAt.Unix()}
}

// providerName is the configured name of the provider with this issuer, or
// the issuer itself.
func (s *Server) providerName(issuer string) string {
	if p, ok := s.byIssuer[issuer]; ok {
		return p.Name()
	}
	return issuer
}

// listIdentities is GET /identities.
func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	ids, err := s.users.Identities(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]identityJSON, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.identityOf(id))
	}
	httpauth.WriteJSON(w, http.StatusOK, map[string][]identityJSON{"identities": out})
}

// linkIdentity is POST /identities: link another identity to the caller's
// account, from a fresh token only, so a stolen session cannot attach its
// thief's identity for lasting access.
func (s *Server) linkIdentity(w http.ResponseWriter, r *http.Request) {
	pr, _ := latchkey.FromContext(r.Context())
	var body struct {
		Provider string `json:"provider"`
		IDToken  string `json:"id_token"`
		Nonce    string `json:"nonce"`
	}
	if err := httpauth.DecodeJSON(r, &body, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := s.link(r, pr.UserID, grant.Map{"provider": body.Provider, "id_token": body.IDToken, "nonce": body.Nonce})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpauth.WriteJSON(w, http.StatusCreated, s.identityOf(id))
}

// link verifies an ID token under the rate limit (the account is the user)
// and links its identity to userID.
func (s *Server) link(r *http.Request, userID string, params grant.Params) (store.Identity, error) {
	var linked store.Identity
	_, err := s.resolve(r, s.providerLink(userID, s.idTokenClaims, &linked), params, false)
	return linked, err
}

// unlinkIdentity is DELETE /identities/{id}.
func (s *Server) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	if err := s.users.Unlink(r.Context(), p.UserID, r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("identity unlinked", "user", p.UserID, "identity", r.PathValue("id"))
	s.event(r, latchkey.Event{Kind: latchkey.EventIdentityUnlinked, UserID: p.UserID, SessionID: p.SessionID})
	w.WriteHeader(http.StatusNoContent)
}
