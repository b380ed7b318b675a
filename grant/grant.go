// Package grant is the step of a sign-in before a session exists: a grant
// turns the credentials of one request into a user.
//
// A password, an ID token from another provider, a magic link, an API key, a
// test login: each is a Grant. The token server (package server) dispatches
// POST /login and POST /oauth/token through one Set of grants and gives every
// grant the same treatment afterwards: the login rate limit, a fresh session,
// the token pair, the log line. A grant therefore holds only what is its own:
// which request selects it, which account an attempt is for, and how its
// credentials are checked.
//
// Grants never create sessions themselves, so a grant an application adds
// cannot skip the rate limit or mint tokens a built-in grant would not.
package grant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Params are the credentials of one request: the string fields of the JSON
// body of POST /login, or the form of POST /oauth/token. Get returns "" for
// an absent field.
type Params interface {
	Get(name string) string
}

// Map is Params held in a map.
type Map map[string]string

// Get returns the value of name, or "".
func (m Map) Get(name string) string { return m[name] }

// Request is one attempt to sign in.
type Request struct {
	Params    Params
	IP        string // the client's address, as the server's trusted proxies determine it
	UserAgent string
	// OAuth reports that the request came to POST /oauth/token, where errors
	// are told as RFC 6749 invalid_grant rather than by their own codes.
	OAuth bool
}

// User is the account a grant found.
type User struct {
	ID       string
	Username string
}

// Grant turns a request's credentials into a user.
type Grant struct {
	// Name selects the grant on POST /login (the body's "grant" field). It is
	// lower-case letters, digits and underscores, at most 32 bytes.
	Name string
	// OAuthType is the grant_type that selects the grant on POST /oauth/token;
	// empty leaves it off that endpoint.
	OAuthType string
	// Account names the account an attempt is for, whose failures the login
	// rate limit counts across addresses (a normalised username, say); nil or
	// "" limits the attempt by the client's address alone. The limit keeps
	// each grant's accounts apart, so no grant's attempts drain another's.
	Account func(Params) string
	// Fresh marks the sessions the grant starts as fresh: their first access
	// token passes RequireFresh guards (a password change, linking an
	// identity). Only a grant in which the user has just proved who they are
	// interactively should set it; the built-in password and provider
	// grants do, an API key should not.
	Fresh bool
	// Resolve checks the credentials and returns the user they belong to. It
	// fails with a *latchkey.Error: latchkey.ErrInvalidCredentials or
	// latchkey.ErrInvalidToken (with a message saying which check failed) for
	// credentials that are wrong, which the rate limit counts as a failed
	// attempt; latchkey.ErrInvalidRequest for a malformed request;
	// latchkey.ErrUnavailable when something it depends on is down. With
	// wrong credentials it may still return the ID of the account they were
	// for: it goes to that account's audit trail, never into the answer.
	Resolve func(ctx context.Context, r Request) (User, error)
}

var namePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// Set is the grants a server offers, by name and by OAuth grant type.
type Set struct {
	byName  map[string]Grant
	byOAuth map[string]Grant
	names   []string
}

// NewSet returns the set of gs. A grant without a valid name or Resolve, and
// two grants with one name or one OAuth type, are errors.
func NewSet(gs ...Grant) (*Set, error) {
	s := &Set{byName: map[string]Grant{}, byOAuth: map[string]Grant{}}
	for _, g := range gs {
		if err := s.add(g); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Set) add(g Grant) error {
	if !namePattern.MatchString(g.Name) {
		return fmt.Errorf("grant: name %q is not 1-32 lower-case letters, digits or underscores", g.Name)
	}
	if g.Resolve == nil {
		return fmt.Errorf("grant: %s has no Resolve", g.Name)
	}
	if _, dup := s.byName[g.Name]; dup {
		return fmt.Errorf("grant: two grants are named %s", g.Name)
	}
	s.byName[g.Name] = g
	s.names = append(s.names, g.Name)
	if g.OAuthType != "" {
		if _, dup := s.byOAuth[g.OAuthType]; dup {
			return fmt.Errorf("grant: two grants have the OAuth type %s", g.OAuthType)
		}
		s.byOAuth[g.OAuthType] = g
	}
	return nil
}

// ErrUnknown is returned for a name or an OAuth type that selects no grant.
var ErrUnknown = errors.New("grant: unknown grant")

// Named returns the grant called name.
func (s *Set) Named(name string) (Grant, error) {
	if g, ok := s.byName[name]; ok {
		return g, nil
	}
	return Grant{}, ErrUnknown
}

// ForOAuth returns the grant of an OAuth grant_type.
func (s *Set) ForOAuth(grantType string) (Grant, error) {
	if g, ok := s.byOAuth[grantType]; ok {
		return g, nil
	}
	return Grant{}, ErrUnknown
}

// Names lists the grants' names in the order they were added.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// OAuthTypes lists the OAuth grant types of the set, sorted.
func (s *Set) OAuthTypes() []string {
	var out []string
	for t := range s.byOAuth {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// AccountOf is the rate-limit account of an attempt with g: "" when g has no
// Account function.
func (g Grant) AccountOf(p Params) string {
	if g.Account == nil {
		return ""
	}
	return g.Account(p)
}
