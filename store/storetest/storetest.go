// Package storetest is the conformance suite every latchkey store backend must
// pass.
//
// # Adding a backend
//
// First implement the core, [store.Store]: sessions, revocations, keys, Ping,
// Purge and Close — what the token logic needs. Then add the roles the backend
// offers ([store.Users], [store.Clients], [store.Identities], [store.Markers],
// [store.Audit], [store.Buckets]) and the capabilities it has
// ([store.SessionCap]), each by implementing its small interface on the same
// type; nothing registers them. Then run the suite. A
// backend's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db, err := mybackend.Open(t.Context(), …)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Run runs the core cases, then, for every role the opened store implements
// (found by type assertion), that role's cases as subtests named for the role
// ("Users/CreateUserRoundTrip", "Clients/…", "Identities/…", "Markers/…",
// "Audit/…", "Buckets/…", "SessionCap/…");
// it logs a line for a role the store does not offer. A store meant to be shared by several nodes also calls
// [RunShared] with two handles on one underlying store.
//
// Every subtest gets a fresh, empty store from open and is named for the
// behaviour it checks (RotateStaleConflicts, RevokeSessionIdempotent, …), so a
// failure reads as the broken promise. Sentinel errors are checked with
// errors.Is, so backends may wrap them.
//
// # Time
//
// Backends never read the clock: every time is an argument, and the suite
// passes fixed times, never sleeps. The times it writes carry nanoseconds; a
// backend must keep at least millisecond precision. The suite compares a time
// read back with the time written after truncating both to the millisecond
// (so a backend may truncate, but must not round up), ignores the location,
// and requires the zero time to come back as the zero time.
//
// The suite's clock starts in the year 2100, so that a backend which hands
// expiry to its server (Redis EXPIREAT, say) still holds every record for the
// whole run.
package storetest

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// base is the instant the suite's fixed clock starts from. Its sub-millisecond
// part checks that backends truncate rather than round.
var base = time.Date(2100, 1, 1, 0, 0, 0, 123_456_789, time.UTC)

// Precision is the time precision the store contract requires: a time read
// back from a store equals the time written, truncated to Precision.
const Precision = time.Millisecond

// coreCases are the cases of the core contract, store.Store.
var coreCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SessionRoundTrip", sessionRoundTrip},
	{"CreateSessionDuplicate", createSessionDuplicate},
	{"CreateSessionOAuthNeedsRegistration", createSessionOAuthNeedsRegistration},
	{"SessionMissing", sessionMissing},
	{"RotateAdvancesOneGeneration", rotateAdvancesOneGeneration},
	{"RotateStaleConflicts", rotateStaleConflicts},
	{"RotateRevokedConflicts", rotateRevokedConflicts},
	{"RotateMissingNotFound", rotateMissingNotFound},
	{"RotateChecksRegistrationAndExpiry", rotateChecksRegistrationAndExpiry},
	{"RotateOtherRegistrationConflicts", rotateOtherRegistrationConflicts},
	{"RotateContention", rotateContention},
	{"RotateManyAtOnce", rotateManyAtOnce},
	{"UserSessionsNewestFirst", userSessionsNewestFirst},
	{"UserSessionsSameMillisecondByID", userSessionsSameMillisecondByID},
	{"RevokeSessionIdempotent", revokeSessionIdempotent},
	{"RevokeMissingNotFound", revokeMissingNotFound},
	{"RevocationFeedOrdered", revocationFeedOrdered},
	{"RevokeTokenFeed", revokeTokenFeed},
	{"KeysPutListDelete", keysPutListDelete},
	{"PurgeExpiredAndRevoked", purgeExpiredAndRevoked},
	{"PurgeAgreesWithLive", purgeAgreesWithLive},
	{"PurgeMany", purgeMany},
	{"CanceledContext", canceledContext},
	{"Ping", ping},
}

// usersCases are the cases of the Users role.
var usersCases = []struct {
	name string
	fn   func(t *testing.T, u store.Users)
}{
	{"CreateUserRoundTrip", createUserRoundTrip},
	{"CreateUserDuplicateName", createUserDuplicateName},
	{"CreateUserDuplicateID", createUserDuplicateID},
	{"UserByNameMissing", userByNameMissing},
	{"UserByIDMissing", userByIDMissing},
	{"UpdateUser", updateUser},
	{"UpdateUserMissing", updateUserMissing},
	{"ListUsersOrdered", listUsersOrdered},
	{"CanceledContext", usersCanceledContext},
}

// clientsCases are the cases of the Clients role; they get the core's
// sessions too, for what a registration means to a session.
var clientsCases = []struct {
	name string
	fn   func(t *testing.T, c store.Clients, s store.Sessions)
}{
	{"ClientsCreateListDelete", clientsCreateListDelete},
	{"RegisteredAgainInheritsNoSession", registeredAgainInheritsNoSession},
	{"CanceledContext", clientsCanceledContext},
}

// identitiesCases are the cases of the Identities role; they get the users
// too, which every store offering identities offers.
var identitiesCases = []struct {
	name string
	fn   func(t *testing.T, s store.Identities, u store.Users)
}{
	{"LinkIdentityRoundTrip", linkIdentityRoundTrip},
	{"LinkIdentityTaken", linkIdentityTaken},
	{"LinkIdentityUnknownUser", linkIdentityUnknownUser},
	{"CreateUserWithIdentity", createUserWithIdentity},
	{"CreateUserWithIdentityUserTaken", createUserWithIdentityUserTaken},
	{"CreateUserWithIdentityIdentityTaken", createUserWithIdentityIdentityTaken},
	{"IdentityBySubjectExact", identityBySubjectExact},
	{"UserIdentitiesOldestFirst", userIdentitiesOldestFirst},
	{"UnlinkIdentity", unlinkIdentity},
	{"UnlinkIdentityKeepOne", unlinkIdentityKeepOne},
	{"UnlinkIdentityKeepOneContention", unlinkIdentityKeepOneContention},
	{"CanceledContext", identitiesCanceledContext},
}

// markersCases are the cases of the Markers role; they get the core too, for
// Purge.
var markersCases = []struct {
	name string
	fn   func(t *testing.T, m store.Markers, s store.Store)
}{
	{"MarkOnce", markOnce},
	{"MarkAfterUntil", markAfterUntil},
	{"MarkKeysIndependent", markKeysIndependent},
	{"MarkContention", markContention},
	{"PurgeMarkers", purgeMarkers},
	{"CanceledContext", markersCanceledContext},
}

// auditCases are the cases of the Audit role.
var auditCases = []struct {
	name string
	fn   func(t *testing.T, a store.Audit)
}{
	{"AppendEventsRoundTrip", appendEventsRoundTrip},
	{"AppendEventsAllOrNothing", appendEventsAllOrNothing},
	{"EventsNewestFirst", eventsNewestFirst},
	{"EventsFilter", eventsFilter},
	{"PurgeEvents", purgeEvents},
	{"AppendEventsContention", appendEventsContention},
	{"CanceledContext", auditCanceledContext},
}

// bucketsCases are the cases of the Buckets role; they get the core too,
// for Purge.
var bucketsCases = []struct {
	name string
	fn   func(t *testing.T, b store.Buckets, s store.Store)
}{
	{"SpendExhaustsBurst", spendExhaustsBurst},
	{"SpendRefills", spendRefills},
	{"WaitExact", waitExact},
	{"WaitReadOnly", waitReadOnly},
	{"ForgetResets", forgetResets},
	{"SpendContention", spendContention},
	{"PurgeBuckets", purgeBuckets},
	{"Invalid", bucketsInvalid},
	{"CanceledContext", bucketsCanceledContext},
}

// sessionCapCases are the cases of the SessionCap capability; they get the
// core too, whose sessions it caps.
var sessionCapCases = []struct {
	name string
	fn   func(t *testing.T, c store.SessionCap, s store.Store)
}{
	{"RevokesLeastRecentlyUsed", capRevokesLeastRecentlyUsed},
	{"TiesByID", capTiesByID},
	{"CountsOnlyLive", capCountsOnlyLive},
	{"Refusals", capRefusals},
	{"Contention", capConcurrent},
	{"RacesRevokeSession", capRacesRevokeSession},
	{"CanceledContext", capCanceledContext},
}

// Run runs the conformance suite against the backend that open creates: the
// core cases, then the cases of every role the store implements. open must
// return a fresh, empty store for every call and register its own t.Cleanup
// to close it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range coreCases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	// Which roles the backend offers: a store of its type answers for all.
	probe := open(t)
	if _, ok := probe.(store.Users); ok {
		t.Run("Users", func(t *testing.T) {
			for _, tc := range usersCases {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t).(store.Users)) })
			}
		})
	} else {
		t.Logf("%T does not offer the Users role: its cases are not run", probe)
	}
	if _, ok := probe.(store.Clients); ok {
		t.Run("Clients", func(t *testing.T) {
			for _, tc := range clientsCases {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					tc.fn(t, s.(store.Clients), s)
				})
			}
		})
	} else {
		t.Logf("%T does not offer the Clients role: its cases are not run", probe)
	}
	if _, ok := probe.(store.Identities); ok {
		t.Run("Identities", func(t *testing.T) {
			if _, ok := probe.(store.Users); !ok {
				t.Fatalf("%T offers the Identities role without the Users role", probe)
			}
			for _, tc := range identitiesCases {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					tc.fn(t, s.(store.Identities), s.(store.Users))
				})
			}
		})
	} else {
		t.Logf("%T does not offer the Identities role: its cases are not run", probe)
	}
	if _, ok := probe.(store.Markers); ok {
		t.Run("Markers", func(t *testing.T) {
			for _, tc := range markersCases {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					tc.fn(t, s.(store.Markers), s)
				})
			}
		})
	} else {
		t.Logf("%T does not offer the Markers role: its cases are not run", probe)
	}
	if _, ok := probe.(store.Audit); ok {
		t.Run("Audit", func(t *testing.T) {
			for _, tc := range auditCases {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t).(store.Audit)) })
			}
		})
	} else {
		t.Logf("%T does not offer the Audit role: its cases are not run", probe)
	}
	if _, ok := probe.(store.Buckets); ok {
		t.Run("Buckets", func(t *testing.T) {
			for _, tc := range bucketsCases {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					tc.fn(t, s.(store.Buckets), s)
				})
			}
		})
	} else {
		t.Logf("%T does not offer the Buckets role: its cases are not run", probe)
	}
	if _, ok := probe.(store.SessionCap); ok {
		t.Run("SessionCap", func(t *testing.T) {
			for _, tc := range sessionCapCases {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					tc.fn(t, s.(store.SessionCap), s)
				})
			}
		})
	} else {
		t.Logf("%T does not offer store.SessionCap: its cases are not run", probe)
	}
}
