package storetest

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// Upgraded describes what a backend's own upgrade test wrote before client
// registrations existed (with SQL of the old schema, or Redis hashes of the
// old shape), for CheckUpgradedRegistrations.
type Upgraded struct {
	// Client is the ID of an OAuth client registered before the upgrade
	// ("" for none), and Registration the registration it must read back with.
	Client, Registration string
	// At is when to try rotations; every session written must be live then,
	// at generation 0.
	At time.Time
	// Known maps the sessions whose registration the upgrade can tell to it:
	// "" for a first-party session, the client's registration for an OAuth
	// session of that registration.
	Known map[string]string
	// Unknown are the OAuth sessions whose registration it cannot tell (their
	// client is gone, or younger than the session).
	Unknown []string
}

// CheckUpgradedRegistrations checks s, a store opened on data written before
// client registrations existed, against u: the client reads back with its
// registration; a session of Known reads back with its registration and
// rotates for it and for no other; a session of Unknown reads back with a
// registration that is not "" (or it would be refreshable as a first-party
// session) and not the client's, and rotates for neither.
func CheckUpgradedRegistrations(t *testing.T, s store.Store, u Upgraded) {
	t.Helper()
	ctx := t.Context()
	if u.Client != "" {
		cs, ok := s.(store.Clients)
		if !ok {
			t.Fatalf("%T does not offer the Clients role", s)
		}
		c, err := cs.Client(ctx, u.Client)
		must(t, err)
		if c.Registration != u.Registration {
			t.Errorf("Client(%q).Registration = %q after the upgrade, want %q", u.Client, c.Registration, u.Registration)
		}
	}
	rotate := func(id, reg string) error {
		_, err := s.RotateSession(ctx, id, store.Rotation{From: 0, At: u.At, ClientRegistration: reg})
		return err
	}
	for id, reg := range u.Known {
		x, err := s.Session(ctx, id)
		must(t, err)
		if x.ClientRegistration != reg {
			t.Errorf("Session(%q).ClientRegistration = %q after the upgrade, want %q", id, x.ClientRegistration, reg)
		}
		wrong := ""
		if reg == "" {
			wrong = u.Registration
		}
		wantErr(t, "RotateSession("+id+", registration "+wrong+")", rotate(id, wrong), store.ErrConflict)
		if err := rotate(id, reg); err != nil {
			t.Errorf("RotateSession(%q, its registration %q) after the upgrade = %v, want it rotated", id, reg, err)
		}
	}
	for _, id := range u.Unknown {
		x, err := s.Session(ctx, id)
		must(t, err)
		if x.ClientID == "" || x.ClientRegistration == "" || x.ClientRegistration == u.Registration {
			t.Errorf("Session(%q) after the upgrade has client %q, registration %q: want an OAuth session whose registration is neither \"\" nor %q",
				id, x.ClientID, x.ClientRegistration, u.Registration)
		}
		wantErr(t, "RotateSession("+id+" as first-party)", rotate(id, ""), store.ErrConflict)
		wantErr(t, "RotateSession("+id+", registration "+u.Registration+")", rotate(id, u.Registration), store.ErrConflict)
	}
}
