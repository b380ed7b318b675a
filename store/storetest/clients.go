package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// clientsCreateListDelete covers the whole client record: a round trip of every
// field (the registration too), a taken ID, exact (case-sensitive) lookup, ID
// order, and deletion; an ID registered again comes with its new registration.
func clientsCreateListDelete(t *testing.T, s store.Clients, _ store.Sessions) {
	ctx := t.Context()
	cs, err := s.ListClients(ctx)
	must(t, err)
	if len(cs) != 0 {
		t.Fatalf("ListClients on an empty store = %v, want none", cs)
	}
	_, err = s.Client(ctx, "web")
	wantErr(t, "Client(missing)", err, store.ErrNotFound)

	conf := store.Client{ID: "web", Registration: "web@reg-1 ✓", SecretHash: "sha256:abc", Name: "the web app", CreatedAt: base.Add(1500 * time.Microsecond),
		Origins: []string{"https://app.example.com", "http://localhost:5173"}, DPoPRequired: true}
	must(t, s.CreateClient(ctx, conf))
	for _, id := range []string{"mobile", "Web", "a{b}:c"} {
		must(t, s.CreateClient(ctx, store.Client{ID: id, Registration: id + "#1", CreatedAt: base}))
	}
	wantErr(t, "CreateClient(taken id)", s.CreateClient(ctx, store.Client{ID: "web", Registration: "web#other", CreatedAt: base}), store.ErrExists)

	got, err := s.Client(ctx, "web")
	must(t, err)
	if got.ID != conf.ID || got.Registration != conf.Registration || got.SecretHash != conf.SecretHash || got.Name != conf.Name ||
		!sameTime(got.CreatedAt, conf.CreatedAt) || got.Public() || !slices.Equal(got.Origins, conf.Origins) || !got.DPoPRequired {
		t.Fatalf("Client(web) = %+v, want %+v", got, conf)
	}
	pub, err := s.Client(ctx, "Web")
	must(t, err)
	if !pub.Public() || pub.Name != "" || pub.Registration != "Web#1" || len(pub.Origins) != 0 || pub.DPoPRequired {
		t.Fatalf("Client(Web) = %+v, want the public client with no name, no origins, no DPoP, registration \"Web#1\"", pub)
	}

	cs, err = s.ListClients(ctx)
	must(t, err)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
		if want := c.ID + "#1"; c.ID != "web" && c.Registration != want {
			t.Fatalf("ListClients: %s has registration %q, want %q", c.ID, c.Registration, want)
		}
	}
	if want := []string{"Web", "a{b}:c", "mobile", "web"}; !slices.Equal(ids, want) {
		t.Fatalf("ListClients = %v, want %v (byte order)", ids, want)
	}

	must(t, s.DeleteClient(ctx, "web"))
	_, err = s.Client(ctx, "web")
	wantErr(t, "Client(deleted)", err, store.ErrNotFound)
	wantErr(t, "DeleteClient(deleted)", s.DeleteClient(ctx, "web"), store.ErrNotFound)
	cs, err = s.ListClients(ctx)
	must(t, err)
	if len(cs) != 3 {
		t.Fatalf("ListClients after a delete = %v, want 3 clients", cs)
	}
	// A deleted ID can be registered again, with its new registration.
	must(t, s.CreateClient(ctx, store.Client{ID: "web", Registration: "web@reg-2", CreatedAt: base}))
	got, err = s.Client(ctx, "web")
	must(t, err)
	if got.Registration != "web@reg-2" || got.SecretHash != "" {
		t.Fatalf("Client(web) registered again = %+v, want registration \"web@reg-2\" and no secret", got)
	}
}

// registeredAgainInheritsNoSession: a session records the registration of its
// client; once the client is removed and registered again under the same ID,
// the new registration (as Client reads it) does not rotate the old session,
// while the old one, before the removal, did.
func registeredAgainInheritsNoSession(t *testing.T, c store.Clients, s store.Sessions) {
	ctx := t.Context()
	must(t, c.CreateClient(ctx, store.Client{ID: "app", Registration: "app@1", CreatedAt: base}))
	first, err := c.Client(ctx, "app")
	must(t, err)
	x := session("s1", "u1", base)
	x.ClientID, x.ClientRegistration = first.ID, first.Registration
	must(t, s.CreateSession(ctx, x))
	at := base.Add(time.Minute)
	_, err = s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at, ClientRegistration: first.Registration})
	must(t, err)

	must(t, c.DeleteClient(ctx, "app"))
	// Registered again in the same millisecond: time tells nothing apart.
	must(t, c.CreateClient(ctx, store.Client{ID: "app", Registration: "app@2", CreatedAt: base}))
	again, err := c.Client(ctx, "app")
	must(t, err)
	if again.Registration == first.Registration {
		t.Fatalf("Client(app) registered again has the old registration %q", again.Registration)
	}
	_, err = s.RotateSession(ctx, "s1", store.Rotation{From: 1, At: at.Add(time.Minute), ClientRegistration: again.Registration})
	wantErr(t, "RotateSession(a session of the earlier registration, the new registration)", err, store.ErrConflict)
	got, err := s.Session(ctx, "s1")
	must(t, err)
	if got.Generation != 1 || got.ClientRegistration != first.Registration || got.ClientID != "app" {
		t.Fatalf("Session(s1) after a refused swap = %+v, want generation 1 of registration %q", got, first.Registration)
	}
}

// clientsCanceledContext: every method of the role passes its context on, as
// canceledContext checks for the core.
func clientsCanceledContext(t *testing.T, s store.Clients, _ store.Sessions) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, store.Client{ID: "web", Registration: "web@1", CreatedAt: base}))
	failCanceled(t, []call{
		{"CreateClient", func(c context.Context) error {
			return s.CreateClient(c, store.Client{ID: "mobile", Registration: "mobile@1", CreatedAt: base})
		}},
		{"Client", func(c context.Context) error { _, err := s.Client(c, "web"); return err }},
		{"ListClients", func(c context.Context) error { _, err := s.ListClients(c); return err }},
		{"DeleteClient", func(c context.Context) error { return s.DeleteClient(c, "web") }},
	})
	// Nothing happened.
	cs, err := s.ListClients(ctx)
	must(t, err)
	if len(cs) != 1 || cs[0].ID != "web" || cs[0].Registration != "web@1" {
		t.Errorf("ListClients after calls with a canceled context = %+v, want web alone", cs)
	}
}
