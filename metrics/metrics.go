package metrics

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keys"
)

// Label values that stand for more than one thing.
const (
	// Other is the value of a label past its bound: an outcome, reason,
	// grant, store operation, route, method or status beyond the distinct
	// values the label may take.
	Other = "other"
	// Unmatched is the route of a request that no route pattern matched.
	Unmatched = "unmatched"
)

// Bounds on the values of labels that are not all known in advance.
const (
	maxOutcomes = 16  // per counter; the known ones are a few
	maxReasons  = 16  // session revocation reasons
	maxGrants   = 32  // sign-in grants: the built-in ones and an application's own
	maxSignIns  = 64  // grant × outcome
	maxOps      = 64  // store operations
	maxRoutes   = 128 // route patterns of the HTTP API
	maxPerRoute = 64  // method × status of one route
)

// Known label values, initialized at zero so that every series exists before
// its first event (rate() and absent() then work from the first scrape).
var (
	refreshOutcomes = []string{latchkey.OutcomeRotated, latchkey.OutcomeGrace, latchkey.OutcomeReused,
		latchkey.OutcomeExpired, latchkey.OutcomeRevoked, latchkey.OutcomeInvalid, latchkey.OutcomeUnavailable}
	verifyOutcomes = []string{latchkey.OutcomeOK, latchkey.OutcomeExpired, latchkey.OutcomeRevoked,
		latchkey.OutcomeInvalid, latchkey.OutcomeUnavailable}
	reasons = []string{string(latchkey.ReasonLogout), string(latchkey.ReasonReused),
		string(latchkey.ReasonPasswordChanged), string(latchkey.ReasonAdmin), string(latchkey.ReasonSessionLimit)}
	// The grants of the token server (package server) and their outcomes.
	signInGrants   = []string{"password", "id_token"}
	signInOutcomes = []string{latchkey.OutcomeSuccess, latchkey.OutcomeFailure}
	// The store operations Auth reports (latchkey.EventStore).
	storeOps = []string{"create_session", "session", "rotate_session", "user_sessions",
		"revoke_session", "revoke_token", "revocations_after"}
	// The server's account events, counted by kind; other kinds are ignored.
	accountKinds = []latchkey.EventKind{latchkey.EventPasswordChanged, latchkey.EventUserCreated,
		latchkey.EventIdentityLinked, latchkey.EventIdentityUnlinked}
	keyStates = []string{keys.StateCurrent, keys.StateNext, keys.StateRetired}
)

// Buckets of the latency histograms, in seconds.
var (
	storeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	httpBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// Metrics counts what latchkey reports and what the token server serves. It
// is a latchkey.Observer and a prometheus.Collector; create it with New. It is
// safe for concurrent use. Once a label value has been seen, counting an
// event with it neither locks nor allocates.
type Metrics struct {
	logins        *family[signIn, prometheus.Counter]
	sessions      prometheus.Counter
	refreshes     *family[string, prometheus.Counter]
	verifications *family[string, prometheus.Counter]
	revocations   *family[string, prometheus.Counter]
	reuse         prometheus.Counter
	rateLimited   *family[string, prometheus.Counter]
	account       *family[latchkey.EventKind, prometheus.Counter]
	store         *family[string, storeOp]
	feedLag       prometheus.Gauge
	routes        *family[string, *routeSeries]

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	collectors []prometheus.Collector
	keyAge     *prometheus.Desc
	keyCount   *prometheus.Desc
	build      prometheus.Metric

	auth atomic.Pointer[latchkey.Auth] // WatchKeys
}

type signIn struct{ grant, outcome string }

type storeOp struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// New returns a Metrics with every counter at zero.
func New() *Metrics {
	m := &Metrics{}
	logins := m.counterVec("latchkey_logins_total",
		"Sign-in attempts through the token server's grants, by grant and outcome (success, failure: wrong credentials).", "grant", "outcome")
	m.logins = newFamily(maxSignIns, signIn{Other, Other}, func(k signIn) prometheus.Counter {
		return logins.WithLabelValues(k.grant, k.outcome)
	})
	for _, g := range signInGrants {
		for _, o := range signInOutcomes {
			m.logins.get(signIn{g, o})
		}
	}
	m.sessions = m.counter("latchkey_sessions_started_total",
		"Sessions started (latchkey.Auth.Login): a successful sign-in through any grant, or a login made by the application itself.")
	m.refreshes = m.counterFamily("latchkey_refreshes_total",
		"Refresh-token exchanges, by outcome: rotated, grace, reused, expired, revoked, invalid, unavailable.",
		"outcome", maxOutcomes, refreshOutcomes)
	m.verifications = m.counterFamily("latchkey_access_token_verifications_total",
		"Access-token verifications, by outcome: ok, expired, revoked, invalid, unavailable.",
		"outcome", maxOutcomes, verifyOutcomes)
	m.revocations = m.counterFamily("latchkey_revocations_total",
		"Sessions ended, by reason: logout, reused, password_changed, admin, session_limit.",
		"reason", maxReasons, reasons)
	m.reuse = m.counter("latchkey_refresh_reuse_detected_total",
		"Replays of an already rotated refresh token outside the grace window; each revoked its whole session.")
	m.rateLimited = m.counterFamily("latchkey_login_rate_limited_total",
		"Sign-in attempts refused by the login rate limit, by grant.", "grant", maxGrants, signInGrants)
	account := m.counterVec("latchkey_account_events_total",
		"Account changes through the token server, by kind: password_changed, user_created, identity_linked, identity_unlinked.", "kind")
	m.account = newFamily(len(accountKinds), "", func(k latchkey.EventKind) prometheus.Counter {
		return account.WithLabelValues(string(k))
	}, accountKinds...)

	storeDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "latchkey_store_operation_duration_seconds",
		Help:    "Latency of the calls latchkey makes to its core store, by operation.",
		Buckets: storeBuckets,
	}, []string{"op"})
	storeErrors := m.counterVec("latchkey_store_errors_total",
		"Calls to the core store that failed, by operation (a missing record or a lost compare-and-swap is not a failure).", "op")
	m.collectors = append(m.collectors, storeDuration)
	m.store = newFamily(maxOps, Other, func(op string) storeOp {
		return storeOp{storeDuration.WithLabelValues(op), storeErrors.WithLabelValues(op)}
	}, storeOps...)

	m.feedLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "latchkey_revocation_feed_lag_seconds",
		Help: "How far behind the store this node's view of revocations is: the age of its last complete read of the revocation feed.",
	})
	m.collectors = append(m.collectors, m.feedLag)

	m.httpRequests = m.counterVec("latchkey_http_requests_total",
		"HTTP requests served, by route pattern, method and status code.", "route", "method", "code")
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "latchkey_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route pattern and method.",
		Buckets: httpBuckets,
	}, []string{"route", "method"})
	m.collectors = append(m.collectors, m.httpDuration)
	m.routes = newFamily(maxRoutes, Other, m.newRoute)

	m.keyAge = prometheus.NewDesc("latchkey_signing_key_age_seconds",
		"Time since the current signing key started signing.", nil, nil)
	m.keyCount = prometheus.NewDesc("latchkey_signing_keys",
		"Signing keys in the store, by state: current (signs), next (published, not yet signing), retired (still published).", []string{"state"}, nil)
	version, revision := buildInfo()
	m.build = prometheus.MustNewConstMetric(prometheus.NewDesc("latchkey_build_info",
		"Always 1; its labels name the latchkey build.", []string{"version", "revision", "goversion"}, nil),
		prometheus.GaugeValue, 1, version, revision, runtime.Version())
	return m
}

func (m *Metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	m.collectors = append(m.collectors, c)
	return c
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.collectors = append(m.collectors, c)
	return c
}

// counterFamily is a counter with one label, its known values at zero.
func (m *Metrics) counterFamily(name, help, label string, max int, known []string) *family[string, prometheus.Counter] {
	c := m.counterVec(name, help, label)
	return newFamily(max, Other, func(v string) prometheus.Counter { return c.WithLabelValues(v) }, known...)
}

// Observe counts e. It is latchkey.Observer's method: give m to
// latchkey.Config.Observer, and to server.Config.Metrics.
func (m *Metrics) Observe(_ context.Context, e latchkey.Event) {
	switch e.Kind {
	case latchkey.EventVerify:
		m.verifications.get(e.Outcome).Inc()
	case latchkey.EventRefresh:
		m.refreshes.get(e.Outcome).Inc()
	case latchkey.EventStore:
		op := m.store.get(e.Op)
		op.duration.Observe(e.Duration.Seconds())
		if e.Err != nil {
			op.errors.Inc()
		}
	case latchkey.EventLogin:
		m.sessions.Inc()
	case latchkey.EventSignIn:
		m.logins.get(signIn{e.Grant, e.Outcome}).Inc()
	case latchkey.EventRateLimited:
		m.rateLimited.get(e.Grant).Inc()
	case latchkey.EventRevoke:
		m.revocations.get(string(e.Reason)).Inc()
	case latchkey.EventReuse:
		m.reuse.Inc()
	case latchkey.EventFeed:
		m.feedLag.Set(e.Duration.Seconds())
	default:
		if c, ok := m.account.lookup(e.Kind); ok {
			c.Inc()
		}
	}
}

// WatchKeys makes m report a's signing keys each time it is collected: the
// age of the current key and how many keys are in each state. Without it,
// those two metrics are absent.
func (m *Metrics) WatchKeys(a *latchkey.Auth) { m.auth.Store(a) }

// Describe sends the descriptions of every metric; it is part of
// prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
	ch <- m.keyAge
	ch <- m.keyCount
	ch <- m.build.Desc()
}

// Collect sends the current value of every metric; it is part of
// prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
	ch <- m.build
	a := m.auth.Load()
	if a == nil {
		return
	}
	now := a.Config().Now()
	count := map[string]int{}
	for _, s := range keyStates {
		count[s] = 0
	}
	for _, k := range a.Keys().Info() {
		count[k.State]++
		if k.State == keys.StateCurrent {
			ch <- prometheus.MustNewConstMetric(m.keyAge, prometheus.GaugeValue, now.Sub(k.ActivatedAt).Seconds())
		}
	}
	for s, n := range count {
		ch <- prometheus.MustNewConstMetric(m.keyCount, prometheus.GaugeValue, float64(n), s)
	}
}

// modulePath is latchkey's module, whose version build info reports.
const modulePath = "github.com/latchkey/latchkey"

// buildInfo returns the version of the latchkey module in this binary (the
// main module, or a dependency of an application) and, for the main module,
// its VCS revision.
func buildInfo() (version, revision string) {
	version, revision = "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	var mod *debug.Module
	if bi.Main.Path == modulePath {
		mod = &bi.Main
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			mod = d
		}
	}
	if mod == nil {
		return
	}
	if mod.Replace != nil && mod.Replace.Version != "" {
		mod = mod.Replace
	}
	if mod.Version != "" {
		version = mod.Version
	}
	return
}
