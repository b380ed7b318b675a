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

// Kept is what a backend's own upgrade test wrote before identities and
// markers existed (with SQL of the old schema), for CheckUpgradedKept: a user,
// an OAuth client and a session of that client's registration, live at
// Session.CreatedAt and at generation Session.Generation.
type Kept struct {
	User    store.User
	Client  store.Client
	Session store.Session
}

// CheckUpgradedKept checks s, a store opened on data written before
// identities and markers existed, against k: the user, the client and the
// session read back as written and the session still rotates; and the new
// roles work beside the old data: an identity links to the old user, and a
// key is marked once.
func CheckUpgradedKept(t *testing.T, s store.Store, k Kept) {
	t.Helper()
	ctx := t.Context()
	us, ok := s.(store.Users)
	if !ok {
		t.Fatalf("%T does not offer the Users role", s)
	}
	got, err := us.UserByName(ctx, k.User.Username)
	must(t, err)
	if d := diffUser(got, k.User); d != "" {
		t.Errorf("UserByName(%q) after the upgrade: %s", k.User.Username, d)
	}
	cs, ok := s.(store.Clients)
	if !ok {
		t.Fatalf("%T does not offer the Clients role", s)
	}
	c, err := cs.Client(ctx, k.Client.ID)
	must(t, err)
	// A client from before origins and DPoP has neither.
	if c.Registration != k.Client.Registration || c.Name != k.Client.Name || !sameTime(c.CreatedAt, k.Client.CreatedAt) ||
		len(c.Origins) != 0 || c.DPoPRequired {
		t.Errorf("Client(%q) after the upgrade = %+v, want %+v", k.Client.ID, c, k.Client)
	}
	x, err := s.Session(ctx, k.Session.ID)
	must(t, err)
	wantSession(t, "Session("+k.Session.ID+") after the upgrade", x, k.Session)
	at := k.Session.CreatedAt.Add(time.Second)
	if _, err := s.RotateSession(ctx, k.Session.ID, store.Rotation{From: k.Session.Generation, At: at, ClientRegistration: k.Client.Registration}); err != nil {
		t.Errorf("RotateSession(%q) after the upgrade = %v, want it rotated", k.Session.ID, err)
	}

	ids, ok := s.(store.Identities)
	if !ok {
		t.Fatalf("%T does not offer the Identities role", s)
	}
	id := store.Identity{ID: "upgraded-identity", UserID: k.User.ID, Provider: "google", Subject: "sub-upgraded", CreatedAt: at}
	must(t, ids.LinkIdentity(ctx, id))
	linked, err := ids.UserIdentities(ctx, k.User.ID)
	must(t, err)
	if len(linked) == 0 || linked[len(linked)-1].ID != id.ID {
		t.Errorf("UserIdentities(%q) after linking %s = %+v, want it last (the newest)", k.User.ID, id.ID, linked)
	}
	wantIdentity(t, ids, id)
	ms, ok := s.(store.Markers)
	if !ok {
		t.Fatalf("%T does not offer the Markers role", s)
	}
	must(t, ms.Mark(ctx, "upgraded", at, at.Add(time.Minute)))
	wantErr(t, "Mark(upgraded) again", ms.Mark(ctx, "upgraded", at, at.Add(time.Minute)), store.ErrExists)
}

// KeptBeforeAudit is what a backend's own upgrade test wrote before audit
// events, limiter buckets and capped sessions existed, for
// CheckUpgradedBeforeAudit: what Kept says, an identity of that user, and a
// marker of Marker until MarkerUntil, after Session.CreatedAt plus a minute.
type KeptBeforeAudit struct {
	Kept
	Identity    store.Identity
	Marker      string
	MarkerUntil time.Time
}

// CheckUpgradedBeforeAudit checks s, a store opened on data written before
// audit events, limiter buckets and capped sessions existed, against k: what
// CheckUpgradedKept checks, the identity and the marker still hold, and the
// new roles work beside the old data: events are appended and read, a
// bucket is spent from, and a capped creation counts the old session,
// revoking it under a cap of 1.
func CheckUpgradedBeforeAudit(t *testing.T, s store.Store, k KeptBeforeAudit) {
	t.Helper()
	CheckUpgradedKept(t, s, k.Kept)
	ctx := t.Context()
	at := k.Session.CreatedAt.Add(2 * time.Second)
	wantIdentity(t, s.(store.Identities), k.Identity)
	wantErr(t, "Mark("+k.Marker+") written before the upgrade", s.(store.Markers).Mark(ctx, k.Marker, at, at.Add(time.Minute)), store.ErrExists)

	a, ok := s.(store.Audit)
	if !ok {
		t.Fatalf("%T does not offer the Audit role", s)
	}
	must(t, a.AppendEvents(ctx, []store.Event{event("upgraded-event", k.User.ID, at)}))
	wantEvents(t, a, store.EventFilter{UserID: k.User.ID}, "upgraded-event")
	b, ok := s.(store.Buckets)
	if !ok {
		t.Fatalf("%T does not offer the Buckets role", s)
	}
	one := store.Bucket{Key: "upgraded", Burst: 1, Every: time.Minute}
	must(t, b.Spend(ctx, []store.Bucket{one}, at))
	wantWait(t, b, at, time.Minute, one)
	c, ok := s.(store.SessionCap)
	if !ok {
		t.Fatalf("%T does not offer store.SessionCap", s)
	}
	createCapped(t, c, session("upgraded-session", k.User.ID, at), 1, at.Add(time.Hour), k.Session.ID)
	wantLive(t, s, k.User.ID, at, "upgraded-session")
}
