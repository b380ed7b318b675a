package grant_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/grant"
)

func resolveNobody(context.Context, grant.Request) (grant.User, error) { return grant.User{}, nil }

func TestNewSet(t *testing.T) {
	ok := grant.Grant{Name: "magic_link", OAuthType: "urn:x", Resolve: resolveNobody}
	s, err := grant.NewSet(grant.Grant{Name: "password", OAuthType: "password", Resolve: resolveNobody}, ok)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := s.Named("magic_link"); err != nil || g.OAuthType != "urn:x" {
		t.Fatalf("Named = %+v, %v", g, err)
	}
	if _, err := s.Named("nope"); !errors.Is(err, grant.ErrUnknown) {
		t.Fatalf("Named(nope) = %v", err)
	}
	if _, err := s.ForOAuth("urn:y"); !errors.Is(err, grant.ErrUnknown) {
		t.Fatalf("ForOAuth(urn:y) = %v", err)
	}
	if got := strings.Join(s.OAuthTypes(), " "); got != "password urn:x" {
		t.Fatalf("OAuthTypes = %q", got)
	}
	for name, gs := range map[string][]grant.Grant{
		"bad name":         {{Name: "Magic Link", Resolve: resolveNobody}},
		"empty name":       {{Name: "", Resolve: resolveNobody}},
		"no resolve":       {{Name: "x"}},
		"same name":        {ok, {Name: "magic_link", Resolve: resolveNobody}},
		"same OAuth type":  {ok, {Name: "other", OAuthType: "urn:x", Resolve: resolveNobody}},
		"name of 33 bytes": {{Name: strings.Repeat("a", 33), Resolve: resolveNobody}},
	} {
		if _, err := grant.NewSet(gs...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := (grant.Grant{}).AccountOf(grant.Map{"username": "x"}); got != "" {
		t.Fatalf("AccountOf without Account = %q", got)
	}
}
