package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store"
)

// maxFormBytes bounds an OAuth request body.
const maxFormBytes = 16 << 10

// oauthError is an error response of the OAuth endpoints (RFC 6749 §5.2).
type oauthError struct {
	status      int
	code        string
	description string
	retryAfter  int // seconds, for 429
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func oauthInvalidRequest(desc string) error {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: desc}
}

// asOAuthError maps an error to its RFC 6749 form. It is the one place the
// API's codes become OAuth codes.
func asOAuthError(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	e := httpauth.AsError(err)
	out := &oauthError{status: http.StatusBadRequest, description: e.Message}
	switch e.Code {
	case latchkey.CodeInvalidClient:
		out.status, out.code = http.StatusUnauthorized, "invalid_client"
	case latchkey.CodeUnauthorizedClient:
		out.code = "unauthorized_client"
	case latchkey.CodeInvalidRequest, latchkey.CodeMissingToken:
		out.code = "invalid_request"
	case latchkey.CodeInvalidDPoPProof, latchkey.CodeUseDPoPNonce: // RFC 9449 §5, §8
		out.code = string(e.Code)
	case latchkey.CodeInvalidCredentials, latchkey.CodeInvalidToken, latchkey.CodeTokenExpired, latchkey.CodeTokenRevoked,
		latchkey.CodeWrongTokenType, latchkey.CodeRefreshReused, latchkey.CodeSessionExpired,
		latchkey.CodeRegistrationClosed:
		// registration_closed: an identity with no account, and provider
		// sign-up closed; the grant cannot be honoured.
		out.code = "invalid_grant"
	case latchkey.CodeRateLimited:
		out.status, out.code = http.StatusTooManyRequests, "temporarily_unavailable"
		out.retryAfter = max(1, int((e.RetryAfter+999_999_999)/1_000_000_000))
	case latchkey.CodeUnavailable:
		out.status, out.code = http.StatusServiceUnavailable, "temporarily_unavailable"
	default:
		out.status, out.code, out.description = http.StatusInternalServerError, "server_error", latchkey.ErrInternal.Message
	}
	return out
}

// writeOAuth answers an OAuth endpoint: JSON that no cache keeps (RFC 6749 §5.1).
func writeOAuth(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Pragma", "no-cache")
	if v == nil {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		return
	}
	httpauth.WriteJSON(w, status, v)
}

func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	e := asOAuthError(err)
	if e.status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", e.code, "err", err)
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+httpauth.Realm+`", charset="UTF-8"`)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeOAuth(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
}

// oauthForm reads the form body of an OAuth request. Parameters travel only in
// the body (a secret in a URL ends up in logs), each at most once (RFC 6749 §3.2).
func oauthForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.URL.RawQuery != "" {
		return nil, oauthInvalidRequest("Parameters go in the form-encoded body, not the URL.")
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthInvalidRequest("The body must be application/x-www-form-urlencoded.")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, oauthInvalidRequest("The form must be encoded in UTF-8.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		return nil, oauthInvalidRequest("The body is larger than 16 KiB or could not be read.")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauthInvalidRequest("The body is not a valid form encoding.")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, oauthInvalidRequest("The parameter " + strconv.Quote(k) + " is repeated.")
		}
	}
	return form, nil
}

// oauthClient authenticates the client of an OAuth request: HTTP Basic with
// the form-encoded id and secret (client_secret_basic), or a public client's
// client_id in the body (auth method "none").
func (s *Server) oauthClient(r *http.Request, form url.Values) (store.Client, error) {
	// A parameter sent without a value is treated as omitted (RFC 6749 §3.1).
	if form.Get("client_secret") != "" {
		return store.Client{}, oauthInvalidRequest("Send the client secret with HTTP Basic authentication, not in the body.")
	}
	if r.Header.Get("Authorization") != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return store.Client{}, latchkey.ErrInvalidClient.WithMessage("Client authentication must use HTTP Basic.")
		}
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return store.Client{}, latchkey.ErrInvalidClient.WithMessage("The Basic credentials are not form-encoded.")
		}
		if form.Get("client_id") != "" && form.Get("client_id") != id {
			return store.Client{}, oauthInvalidRequest("The client_id in the body differs from the authenticated client.")
		}
		return s.clients.Authenticate(r.Context(), id, secret)
	}
	if form.Get("client_id") == "" {
		return store.Client{}, latchkey.ErrInvalidClient.WithMessage("Identify the client: HTTP Basic, or client_id for a public client.")
	}
	return s.clients.Authenticate(r.Context(), form.Get("client_id"), "")
}

// oauthRequest reads the form of an OAuth request and authenticates its client.
func (s *Server) oauthRequest(w http.ResponseWriter, r *http.Request) (url.Values, store.Client, error) {
	form, err := oauthForm(w, r)
	if err != nil {
		return nil, store.Client{}, err
	}
	cl, err := s.oauthClient(r, form)
	if err == nil {
		err = s.checkClientOrigin(r, cl)
	}
	return form, cl, err
}

// checkClientOrigin refuses a request that a browser sent from a page on
// another origin unless the server trusts that origin (Config.CORSOrigins)
// or the client lists it (its registered origins): a page elsewhere cannot
// act as the client, even though a public client proves nothing else.
// Requests from outside a browser, which send no Origin, are not concerned.
func (s *Server) checkClientOrigin(r *http.Request, cl store.Client) error {
	if s.mw.CheckOrigin(r) == nil || slices.Contains(cl.Origins, r.Header.Get("Origin")) {
		return nil
	}
	return latchkey.ErrUnauthorizedClient.WithMessage("This client does not accept requests from the origin of this page; " +
		"register the client with it (latchkey clients add --origin) or list it in --cors-origins.")
}

// clientOf is the library's view of a registered client.
func clientOf(c store.Client) latchkey.Client {
	return latchkey.Client{ID: c.ID, Registration: c.Registration}
}

// checkScope accepts an absent scope or one that names only latchkey.OAuthScope.
func checkScope(scope string) error {
	for _, sc := range strings.Fields(scope) {
		if sc != latchkey.OAuthScope {
			return &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
				description: "The only scope is " + strconv.Quote(latchkey.OAuthScope) + "."}
		}
	}
	return nil
}

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	// IssuedTokenType answers a token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// oauthToken is POST /oauth/token: refresh_token and every sign-in grant
// with an OAuth type (password, token exchange, an application's own).
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	s.answerOAuth(w, r, func() (any, error) {
		t, gt, err := s.grant(r, w)
		if err != nil {
			return nil, err
		}
		out := tokenResponse{AccessToken: t.AccessToken, TokenType: t.TokenType,
			ExpiresIn: t.ExpiresIn, RefreshToken: t.RefreshToken, Scope: latchkey.OAuthScope}
		if gt == tokenExchange {
			out.IssuedTokenType = tokenTypeAccess // RFC 8693 §2.2.1
		}
		return out, nil
	})
}

// answerOAuth answers an OAuth endpoint with what serve returns: a 200 with
// its body (none when nil), or its error as RFC 6749 §5.2 says.
func (s *Server) answerOAuth(w http.ResponseWriter, r *http.Request, serve func() (any, error)) {
	out, err := serve()
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	writeOAuth(w, http.StatusOK, out)
}

// grant runs the grant of an OAuth token request and returns its tokens and
// grant type.
func (s *Server) grant(r *http.Request, w http.ResponseWriter) (*latchkey.Tokens, string, error) {
	form, cl, err := s.oauthRequest(w, r)
	if err != nil {
		return nil, "", err
	}
	if err := checkScope(form.Get("scope")); err != nil {
		return nil, "", err
	}
	jkt, err := s.signInProof(w, r, false, cl.DPoPRequired)
	if err != nil {
		return nil, "", err
	}
	gt := form.Get("grant_type")
	t, err := s.grantOf(r, form, cl, gt, jkt)
	return t, gt, err
}

// grantOf runs the grant gt for cl; jkt is the thumbprint of the request's
// DPoP key, or "".
func (s *Server) grantOf(r *http.Request, form url.Values, cl store.Client, gt, jkt string) (*latchkey.Tokens, error) {
	switch gt {
	case "refresh_token":
		// Not a sign-in: it continues a session rather than starting one.
		rt := form.Get("refresh_token")
		if rt == "" {
			return nil, oauthInvalidRequest("The refresh_token parameter is required.")
		}
		t, err := s.auth.Refresh(r.Context(), rt, latchkey.RefreshOptions{Client: clientOf(cl), AccessToken: form.Get("access_token"), JKT: jkt})
		if err == nil {
			s.log.Info("refresh", "user", t.UserID, "session", t.SessionID, "client", cl.ID)
		}
		return t, err
	case "":
		return nil, oauthInvalidRequest("The grant_type parameter is required.")
	default:
		g, err := s.grants.ForOAuth(gt)
		if err != nil {
			return nil, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type",
				description: "The grant types are " + strings.Join(s.oauthGrantTypes(), ", ") + "."}
		}
		t, _, err := s.signIn(r, g, formParams(form), clientOf(cl), jkt)
		return t, err
	}
}

// formParams are an OAuth form as grant parameters.
type formParams url.Values

func (f formParams) Get(name string) string { return url.Values(f).Get(name) }

// oauthGrantTypes lists the grant types of POST /oauth/token, sorted.
func (s *Server) oauthGrantTypes() []string {
	return slices.Sorted(slices.Values(append(s.grants.OAuthTypes(), "refresh_token")))
}

// oauthRevoke is POST /oauth/revoke (RFC 7009): 200 with no body.
func (s *Server) oauthRevoke(w http.ResponseWriter, r *http.Request) {
	s.answerOAuth(w, r, func() (any, error) {
		form, cl, err := s.oauthRequest(w, r)
		if err != nil {
			return nil, err
		}
		// token_type_hint only speeds up a search; both types are told apart
		// by their form, so it is not needed and an unknown one is ignored.
		tok := form.Get("token")
		if tok == "" {
			return nil, oauthInvalidRequest("The token parameter is required.")
		}
		if err := s.auth.RevokeToken(r.Context(), tok, clientOf(cl)); err != nil {
			return nil, err
		}
		s.log.Info("token revoked", "client", cl.ID)
		return nil, nil
	})
}

// introspection is an answer of POST /oauth/introspect (RFC 7662 §2.2).
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
	Sid       string `json:"sid,omitempty"`
}

// oauthIntrospect is POST /oauth/introspect: for confidential clients only.
// An access token of any client can be introspected (the caller is a resource
// server); a refresh token only by its own client. Whatever is not active
// answers {"active": false} and nothing else.
func (s *Server) oauthIntrospect(w http.ResponseWriter, r *http.Request) {
	s.answerOAuth(w, r, func() (any, error) { return s.introspect(w, r) })
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) (introspection, error) {
	form, cl, err := s.oauthRequest(w, r)
	if err != nil {
		return introspection{}, err
	}
	if cl.Public() {
		return introspection{}, latchkey.ErrInvalidClient.WithMessage("Introspection is for confidential clients.")
	}
	tok := form.Get("token")
	if tok == "" {
		return introspection{}, oauthInvalidRequest("The token parameter is required.")
	}
	info, err := s.auth.Inspect(r.Context(), tok)
	if errors.Is(err, latchkey.ErrUnavailable) {
		return introspection{}, err
	}
	if err != nil || (info.Type == latchkey.RefreshTokenType && info.ClientID != cl.ID) {
		return introspection{Active: false}, nil
	}
	if info.ClientID != "" {
		// The token's client must still be the registration it was issued to.
		owner, err := s.clients.Registration(r.Context(), info.ClientID)
		if errors.Is(err, latchkey.ErrUnavailable) {
			return introspection{}, err
		}
		if err != nil || owner.Registration != info.ClientRegistration {
			return introspection{Active: false}, nil
		}
	}
	u, err := s.users.ByID(r.Context(), info.UserID)
	if errors.Is(err, latchkey.ErrUnavailable) {
		return introspection{}, err
	}
	if err != nil || u.Disabled {
		return introspection{Active: false}, nil
	}
	cfg := s.auth.Config()
	out := introspection{Active: true, Scope: info.Scope, ClientID: info.ClientID, Username: u.Username,
		Exp: info.ExpiresAt.Unix(), Iat: info.IssuedAt.Unix(), Sub: info.UserID, Iss: cfg.Issuer, Sid: info.SessionID}
	if info.Type == latchkey.AccessTokenType {
		out.TokenType, out.Aud, out.Jti = "Bearer", cfg.Audience, info.TokenID
	} else {
		out.TokenType = latchkey.RefreshTokenType
	}
	return out, nil
}

// metadata is the authorization server metadata (RFC 8414).
type metadata struct {
	Issuer                       string   `json:"issuer"`
	TokenEndpoint                string   `json:"token_endpoint"`
	RevocationEndpoint           string   `json:"revocation_endpoint"`
	IntrospectionEndpoint        string   `json:"introspection_endpoint"`
	JWKSURI                      string   `json:"jwks_uri"`
	GrantTypes                   []string `json:"grant_types_supported"`
	ResponseTypes                []string `json:"response_types_supported"`
	TokenAuthMethods             []string `json:"token_endpoint_auth_methods_supported"`
	RevocationAuthMethods        []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuthMethods     []string `json:"introspection_endpoint_auth_methods_supported"`
	Scopes                       []string `json:"scopes_supported"`
	AccessTokenSigningAlgorithms []string `json:"access_token_signing_alg_values_supported"`
	DPoPAlgorithms               []string `json:"dpop_signing_alg_values_supported,omitempty"` // RFC 9449 §5.1
}

// oauthMetadata is GET /.well-known/oauth-authorization-server. Every URL is
// the configured issuer's, which is also every access token's "iss".
func (s *Server) oauthMetadata(w http.ResponseWriter, r *http.Request) {
	iss := strings.TrimSuffix(s.auth.Config().Issuer, "/")
	var algs []string
	for _, k := range s.auth.Keys().Info() {
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	slices.Sort(algs)
	both := []string{"client_secret_basic", "none"}
	body, err := json.Marshal(metadata{
		Issuer:                       s.auth.Config().Issuer,
		TokenEndpoint:                iss + "/oauth/token",
		RevocationEndpoint:           iss + "/oauth/revoke",
		IntrospectionEndpoint:        iss + "/oauth/introspect",
		JWKSURI:                      iss + "/.well-known/jwks.json",
		GrantTypes:                   s.oauthGrantTypes(),
		ResponseTypes:                []string{},
		TokenAuthMethods:             both,
		RevocationAuthMethods:        both,
		IntrospectionAuthMethods:     []string{"client_secret_basic"},
		Scopes:                       []string{latchkey.OAuthScope},
		AccessTokenSigningAlgorithms: algs,
		DPoPAlgorithms:               s.dpopAlgorithms(),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(body)
}

// dpopAlgorithms are the algorithms DPoP proofs may be signed with; none
// when DPoP is off.
func (s *Server) dpopAlgorithms() []string {
	if v := s.mw.DPoP(); v != nil {
		return v.Algorithms()
	}
	return nil
}
