package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// identity returns an identity of user userID at provider, created at created.
func identity(id, userID, provider, subject string, created time.Time) store.Identity {
	return store.Identity{ID: id, UserID: userID, Provider: provider, Subject: subject, Email: subject + "@example.com", CreatedAt: created}
}

// diffIdentity describes how got differs from want, or returns "".
func diffIdentity(got, want store.Identity) string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("UserID", got.UserID, want.UserID)
	str("Provider", got.Provider, want.Provider)
	str("Subject", got.Subject, want.Subject)
	str("Email", got.Email, want.Email)
	if !sameTime(got.CreatedAt, want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// wantIdentity fails unless IdentityBySubject finds want under its provider
// and subject.
func wantIdentity(t *testing.T, s store.Identities, want store.Identity) {
	t.Helper()
	got, err := s.IdentityBySubject(t.Context(), want.Provider, want.Subject)
	if err != nil {
		t.Fatalf("IdentityBySubject(%q, %q) = %v, want %s", want.Provider, want.Subject, err, want.ID)
	}
	if d := diffIdentity(got, want); d != "" {
		t.Fatalf("IdentityBySubject(%q, %q): %s", want.Provider, want.Subject, d)
	}
}

// noIdentity fails unless IdentityBySubject finds nothing.
func noIdentity(t *testing.T, s store.Identities, provider, subject string) {
	t.Helper()
	got, err := s.IdentityBySubject(t.Context(), provider, subject)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("IdentityBySubject(%q, %q) = %+v, %v; want %v", provider, subject, got, err, store.ErrNotFound)
	}
}

// wantUserIdentities fails unless the user's identities have exactly these
// IDs, in this order.
func wantUserIdentities(t *testing.T, s store.Identities, userID string, want ...string) []store.Identity {
	t.Helper()
	ids, err := s.UserIdentities(t.Context(), userID)
	must(t, err)
	var got []string
	for _, id := range ids {
		got = append(got, id.ID)
		if id.UserID != userID {
			t.Fatalf("UserIdentities(%q) holds %s of user %q", userID, id.ID, id.UserID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("UserIdentities(%q) = %q, want %q", userID, got, want)
	}
	return ids
}

// noUser fails unless neither the ID nor the username finds a user.
func noUser(t *testing.T, u store.Users, id, name string) {
	t.Helper()
	if got, err := u.UserByID(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByID(%q) = %+v, %v; want %v", id, got, err, store.ErrNotFound)
	}
	if got, err := u.UserByName(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByName(%q) = %+v, %v; want %v", name, got, err, store.ErrNotFound)
	}
}

// linkIdentityRoundTrip: every field comes back, through IdentityBySubject
// and UserIdentities; a user without identities has none, without error.
func linkIdentityRoundTrip(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, u.CreateUser(ctx, user("u1", "alice")))
	must(t, u.CreateUser(ctx, user("u2", "bob")))
	wantUserIdentities(t, s, "u1")
	id := store.Identity{ID: "i1", UserID: "u1", Provider: "google", Subject: "110169484474386276334",
		Email: "Alice.Ünïcode@example.com", CreatedAt: base.Add(1500 * time.Microsecond)}
	must(t, s.LinkIdentity(ctx, id))
	wantIdentity(t, s, id)
	got := wantUserIdentities(t, s, "u1", "i1")
	if d := diffIdentity(got[0], id); d != "" {
		t.Fatalf(`UserIdentities("u1")[0]: %s`, d)
	}
	wantUserIdentities(t, s, "u2")
	wantUserIdentities(t, s, "nobody")
	// An empty email is kept as empty.
	bare := store.Identity{ID: "i2", UserID: "u2", Provider: "github", Subject: "583231", CreatedAt: base}
	must(t, s.LinkIdentity(ctx, bare))
	wantIdentity(t, s, bare)
}

// linkIdentityTaken: (provider, subject) links to one user, and the ID names
// one identity; a refused link writes nothing. The same subject at another
// provider is another identity.
func linkIdentityTaken(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, u.CreateUser(ctx, user("u1", "alice")))
	must(t, u.CreateUser(ctx, user("u2", "bob")))
	first := identity("i1", "u1", "google", "sub-1", base)
	must(t, s.LinkIdentity(ctx, first))
	wantErr(t, "LinkIdentity(a linked subject, to another user)", s.LinkIdentity(ctx, identity("i2", "u2", "google", "sub-1", base)), store.ErrExists)
	wantErr(t, "LinkIdentity(a linked subject, to its user again)", s.LinkIdentity(ctx, identity("i3", "u1", "google", "sub-1", base)), store.ErrExists)
	wantErr(t, "LinkIdentity(a taken ID)", s.LinkIdentity(ctx, identity("i1", "u2", "github", "sub-2", base)), store.ErrExists)
	wantIdentity(t, s, first)
	noIdentity(t, s, "github", "sub-2")
	wantUserIdentities(t, s, "u1", "i1")
	wantUserIdentities(t, s, "u2")
	other := identity("i2", "u2", "github", "sub-1", base)
	must(t, s.LinkIdentity(ctx, other))
	wantIdentity(t, s, other)
	wantIdentity(t, s, first)
}

// linkIdentityUnknownUser: an identity links only to a user that exists.
func linkIdentityUnknownUser(t *testing.T, s store.Identities, _ store.Users) {
	wantErr(t, "LinkIdentity(user nobody)", s.LinkIdentity(t.Context(), identity("i1", "nobody", "google", "sub-1", base)), store.ErrNotFound)
	noIdentity(t, s, "google", "sub-1")
	wantUserIdentities(t, s, "nobody")
}

// createUserWithIdentity: the user and the identity both go in, and read
// back as written.
func createUserWithIdentity(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	nu, id := user("u1", "alice"), identity("i1", "u1", "google", "sub-1", base.Add(time.Second))
	must(t, s.CreateUserWithIdentity(ctx, nu, id))
	got, err := u.UserByName(ctx, "alice")
	must(t, err)
	if d := diffUser(got, nu); d != "" {
		t.Fatalf(`UserByName("alice"): %s`, d)
	}
	got, err = u.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, nu); d != "" {
		t.Fatalf(`UserByID("u1"): %s`, d)
	}
	if us, err := u.ListUsers(ctx); err != nil || len(us) != 1 || us[0].ID != "u1" {
		t.Fatalf("ListUsers = %+v, %v; want alice alone", us, err)
	}
	wantIdentity(t, s, id)
	wantUserIdentities(t, s, "u1", "i1")
	// The identity is the user's like a linked one: more can be linked.
	must(t, s.LinkIdentity(ctx, identity("i2", "u1", "github", "sub-2", base.Add(2*time.Second))))
	wantUserIdentities(t, s, "u1", "i1", "i2")
}

// createUserWithIdentityUserTaken: a taken username or user ID refuses the
// whole creation, and no identity is left behind: the same identity can be
// created with a free name afterwards.
func createUserWithIdentityUserTaken(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, u.CreateUser(ctx, user("u1", "alice")))
	id := identity("i2", "u2", "google", "sub-2", base)
	wantErr(t, `CreateUserWithIdentity(u2 "alice", …)`, s.CreateUserWithIdentity(ctx, user("u2", "alice"), id), store.ErrExists)
	noIdentity(t, s, "google", "sub-2")
	wantUserIdentities(t, s, "u2")
	wantUserIdentities(t, s, "u1")
	if got, err := u.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`UserByID("u2") after a refused creation = %+v, %v; want %v`, got, err, store.ErrNotFound)
	}
	got, err := u.UserByName(ctx, "alice")
	must(t, err)
	if d := diffUser(got, user("u1", "alice")); d != "" {
		t.Fatalf(`UserByName("alice") after a refused creation: %s`, d)
	}

	taken := identity("i3", "u1", "google", "sub-3", base)
	wantErr(t, `CreateUserWithIdentity(u1 "carol", …)`, s.CreateUserWithIdentity(ctx, user("u1", "carol"), taken), store.ErrExists)
	noIdentity(t, s, "google", "sub-3")
	wantUserIdentities(t, s, "u1")
	if got, err := u.UserByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`UserByName("carol") after a refused creation = %+v, %v; want %v`, got, err, store.ErrNotFound)
	}
	got, err = u.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, user("u1", "alice")); d != "" {
		t.Fatalf(`UserByID("u1") after a refused creation: %s`, d)
	}

	// Nothing of the refused creations holds a name, an ID or a subject.
	must(t, s.CreateUserWithIdentity(ctx, user("u2", "bob"), id))
	wantIdentity(t, s, id)
	must(t, s.CreateUserWithIdentity(ctx, user("u3", "carol"), identity("i3", "u3", "google", "sub-3", base)))
	wantUserIdentities(t, s, "u3", "i3")
}

// createUserWithIdentityIdentityTaken: a linked (provider, subject) or a
// taken identity ID refuses the whole creation, and no user is left behind:
// the same user can be created afterwards.
func createUserWithIdentityIdentityTaken(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	first := identity("i1", "u1", "google", "sub-1", base)
	must(t, s.CreateUserWithIdentity(ctx, user("u1", "alice"), first))

	wantErr(t, `CreateUserWithIdentity(u2 "bob", a linked subject)`,
		s.CreateUserWithIdentity(ctx, user("u2", "bob"), identity("i2", "u2", "google", "sub-1", base)), store.ErrExists)
	noUser(t, u, "u2", "bob")
	wantErr(t, `CreateUserWithIdentity(u3 "carol", a taken identity ID)`,
		s.CreateUserWithIdentity(ctx, user("u3", "carol"), identity("i1", "u3", "github", "sub-3", base)), store.ErrExists)
	noUser(t, u, "u3", "carol")
	noIdentity(t, s, "github", "sub-3")
	wantUserIdentities(t, s, "u2")
	wantUserIdentities(t, s, "u3")
	wantIdentity(t, s, first)
	wantUserIdentities(t, s, "u1", "i1")
	if us, err := u.ListUsers(ctx); err != nil || len(us) != 1 {
		t.Fatalf("ListUsers after refused creations = %+v, %v; want alice alone", us, err)
	}

	// Nothing of the refused creations holds a name or an ID.
	must(t, s.CreateUserWithIdentity(ctx, user("u2", "bob"), identity("i2", "u2", "google", "sub-2", base)))
	must(t, u.CreateUser(ctx, user("u3", "carol")))
}

// identityBySubjectExact: provider and subject are matched byte for byte;
// pairs that a careless encoding would confuse are distinct identities.
func identityBySubjectExact(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	noIdentity(t, s, "google", "nobody")
	must(t, u.CreateUser(ctx, user("u1", "alice")))
	must(t, u.CreateUser(ctx, user("u2", "bob")))
	id := identity("i1", "u1", "google", "Sub:1/ü", base)
	must(t, s.LinkIdentity(ctx, id))
	wantIdentity(t, s, id)
	for _, pair := range [][2]string{
		{"google", "sub:1/ü"}, {"Google", "Sub:1/ü"}, {"google", "Sub:1/ü "}, {"google", "Sub:1/u"},
		{"google", "Sub:1"}, {"google", ""}, {"", "Sub:1/ü"}, {"google:Sub", "1/ü"}, {"goo", "gle:Sub:1/ü"},
	} {
		noIdentity(t, s, pair[0], pair[1])
	}
	// Distinct pairs, each linked to a user of its own.
	pairs := []store.Identity{
		identity("i-a", "u1", "p", "a", base),
		identity("i-A", "u2", "p", "A", base),
		identity("i-colon1", "u1", "a:b", "c", base),
		identity("i-colon2", "u2", "a", "b:c", base),
		identity("i-brace", "u1", "{p}", "}{", base),
		identity("i-empty", "u2", "", "x", base),
	}
	for _, p := range pairs {
		must(t, s.LinkIdentity(ctx, p))
	}
	for _, p := range pairs {
		wantIdentity(t, s, p)
	}
}

// userIdentitiesOldestFirst: oldest first; identities created in the same
// millisecond come in byte order of ID ("B" before "a"), whatever their
// sub-millisecond times; other users' identities are not listed.
func userIdentitiesOldestFirst(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, u.CreateUser(ctx, user("u1", "alice")))
	must(t, u.CreateUser(ctx, user("u2", "bob")))
	ms := base.Add(time.Minute).Truncate(time.Millisecond)
	for _, id := range []store.Identity{
		identity("z-newest", "u1", "p", "1", base.Add(2*time.Minute)),
		identity("id-b", "u1", "p", "2", ms.Add(100*time.Microsecond)),
		identity("id-B", "u1", "p", "3", ms.Add(900*time.Microsecond)),
		identity("y-oldest", "u1", "p", "4", base),
		identity("id-a", "u1", "p", "5", ms),
		identity("other", "u2", "p", "6", base.Add(time.Minute)),
	} {
		must(t, s.LinkIdentity(ctx, id))
	}
	got := wantUserIdentities(t, s, "u1", "y-oldest", "id-B", "id-a", "id-b", "z-newest")
	if d := diffIdentity(got[1], identity("id-B", "u1", "p", "3", ms.Add(900*time.Microsecond))); d != "" {
		t.Fatalf(`UserIdentities("u1")[1]: %s`, d)
	}
	wantUserIdentities(t, s, "u2", "other")
}

// unlinkIdentity: an identity is unlinked only through its own user; once
// unlinked, it is gone everywhere, and its (provider, subject) and ID are
// free again.
func unlinkIdentity(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, u.CreateUser(ctx, user("u1", "alice")))
	must(t, u.CreateUser(ctx, user("u2", "bob")))
	id := identity("i1", "u1", "google", "sub-1", base)
	must(t, s.LinkIdentity(ctx, id))
	must(t, s.LinkIdentity(ctx, identity("i2", "u2", "google", "sub-2", base)))
	for _, keepOne := range []bool{false, true} {
		wantErr(t, fmt.Sprintf("UnlinkIdentity(u1, missing, keepOne %v)", keepOne), s.UnlinkIdentity(ctx, "u1", "nope", keepOne), store.ErrNotFound)
		wantErr(t, fmt.Sprintf("UnlinkIdentity(u1, u2's identity, keepOne %v)", keepOne), s.UnlinkIdentity(ctx, "u1", "i2", keepOne), store.ErrNotFound)
		wantErr(t, fmt.Sprintf("UnlinkIdentity(nobody, u1's identity, keepOne %v)", keepOne), s.UnlinkIdentity(ctx, "nobody", "i1", keepOne), store.ErrNotFound)
	}
	wantUserIdentities(t, s, "u2", "i2")
	wantIdentity(t, s, id)

	must(t, s.UnlinkIdentity(ctx, "u1", "i1", false)) // the last one: no keepOne, no refusal
	wantUserIdentities(t, s, "u1")
	noIdentity(t, s, "google", "sub-1")
	wantErr(t, "UnlinkIdentity(u1, i1 again)", s.UnlinkIdentity(ctx, "u1", "i1", false), store.ErrNotFound)
	wantUserIdentities(t, s, "u2", "i2")

	// The subject and the ID are free: both go to another user.
	again := identity("i1", "u2", "google", "sub-1", base.Add(time.Minute))
	must(t, s.LinkIdentity(ctx, again))
	wantIdentity(t, s, again)
	wantUserIdentities(t, s, "u2", "i2", "i1")
	wantUserIdentities(t, s, "u1")
}

// unlinkIdentityKeepOne: with keepOne, every identity but the last can go;
// the last is refused with ErrConflict and kept.
func unlinkIdentityKeepOne(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, s.CreateUserWithIdentity(ctx, user("u1", "alice"), identity("i1", "u1", "google", "sub-1", base)))
	must(t, s.LinkIdentity(ctx, identity("i2", "u1", "github", "sub-2", base.Add(time.Second))))
	must(t, s.LinkIdentity(ctx, identity("i3", "u1", "gitlab", "sub-3", base.Add(2*time.Second))))
	must(t, s.UnlinkIdentity(ctx, "u1", "i1", true))
	must(t, s.UnlinkIdentity(ctx, "u1", "i3", true))
	wantErr(t, "UnlinkIdentity(u1, its last identity, keepOne)", s.UnlinkIdentity(ctx, "u1", "i2", true), store.ErrConflict)
	wantUserIdentities(t, s, "u1", "i2")
	wantIdentity(t, s, identity("i2", "u1", "github", "sub-2", base.Add(time.Second)))
	// A missing identity is missing, whether or not keepOne would refuse.
	wantErr(t, "UnlinkIdentity(u1, missing, keepOne) with one identity left", s.UnlinkIdentity(ctx, "u1", "i1", true), store.ErrNotFound)
	must(t, s.UnlinkIdentity(ctx, "u1", "i2", false))
	wantUserIdentities(t, s, "u1")
	noIdentity(t, s, "github", "sub-2")
}

// unlinkIdentityKeepOneContention: concurrent unlinks with keepOne, each of a
// different identity of one user, leave exactly one: with two identities and
// two unlinks, one succeeds and one gets ErrConflict, round after round; with
// eight and eight, seven succeed.
func unlinkIdentityKeepOneContention(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	round := func(t *testing.T, r, n int) {
		t.Helper()
		uid := fmt.Sprintf("u%d", r)
		must(t, u.CreateUser(ctx, user(uid, fmt.Sprintf("user-%d", r))))
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-i%d", uid, i)
			must(t, s.LinkIdentity(ctx, identity(ids[i], uid, "p", ids[i], base.Add(time.Duration(i)*time.Second))))
		}
		won := race(t, n, store.ErrConflict,
			func(i int) string { return fmt.Sprintf("round %d: UnlinkIdentity(%s, %s, keepOne)", r, uid, ids[i]) },
			func(i int) error { return s.UnlinkIdentity(ctx, uid, ids[i], true) })
		if len(won) != n-1 {
			t.Fatalf("round %d: %d of %d concurrent unlinks with keepOne succeeded, want %d", r, len(won), n, n-1)
		}
		kept := ""
		for i, id := range ids {
			if !slices.Contains(won, i) {
				kept = id
			}
		}
		wantUserIdentities(t, s, uid, kept)
		wantIdentity(t, s, identity(kept, uid, "p", kept, base.Add(time.Duration(slices.Index(ids, kept))*time.Second)))
	}
	for r := range 10 {
		round(t, r, 2)
	}
	round(t, 10, 8)
}

// identitiesCanceledContext: every method of the role passes its context on,
// as canceledContext checks for the core.
func identitiesCanceledContext(t *testing.T, s store.Identities, u store.Users) {
	ctx := t.Context()
	must(t, s.CreateUserWithIdentity(ctx, user("u1", "alice"), identity("i1", "u1", "google", "sub-1", base)))
	must(t, s.LinkIdentity(ctx, identity("i2", "u1", "github", "sub-2", base)))
	failCanceled(t, []call{
		{"LinkIdentity", func(c context.Context) error { return s.LinkIdentity(c, identity("i3", "u1", "gitlab", "sub-3", base)) }},
		{"CreateUserWithIdentity", func(c context.Context) error {
			return s.CreateUserWithIdentity(c, user("u2", "bob"), identity("i4", "u2", "google", "sub-4", base))
		}},
		{"IdentityBySubject", func(c context.Context) error { _, err := s.IdentityBySubject(c, "google", "sub-1"); return err }},
		{"UserIdentities", func(c context.Context) error { _, err := s.UserIdentities(c, "u1"); return err }},
		{"UnlinkIdentity", func(c context.Context) error { return s.UnlinkIdentity(c, "u1", "i1", false) }},
		{"UnlinkIdentity keepOne", func(c context.Context) error { return s.UnlinkIdentity(c, "u1", "i2", true) }},
	})
	// Nothing happened.
	wantUserIdentities(t, s, "u1", "i1", "i2")
	noIdentity(t, s, "gitlab", "sub-3")
	noIdentity(t, s, "google", "sub-4")
	noUser(t, u, "u2", "bob")
}
