package metrics_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/metrics"
	"github.com/latchkey/latchkey/store/sqlite"
)

// gather registers m on a pedantic registry (which checks that what m
// collects is what it describes) and returns every series by family name.
func gather(t testing.TB, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func labelsOf(s *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range s.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// value is the value of the series of family name with exactly labels; a
// histogram's value is its count. ok is false if there is no such series.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, ok bool) {
	for _, s := range fams[name].GetMetric() {
		if !maps.Equal(labelsOf(s), labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestObserveCounts(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		events []latchkey.Event
		metric string
		labels map[string]string
		want   float64
	}{
		{"rotated refreshes", []latchkey.Event{{Kind: latchkey.EventRefresh, Outcome: latchkey.OutcomeRotated}, {Kind: latchkey.EventRefresh, Outcome: latchkey.OutcomeRotated}},
			"latchkey_refreshes_total", l("outcome", "rotated"), 2},
		{"reused refresh", []latchkey.Event{{Kind: latchkey.EventRefresh, Outcome: latchkey.OutcomeReused, SessionID: "s1", UserID: "u1"}},
			"latchkey_refreshes_total", l("outcome", "reused"), 1},
		{"grace refresh", []latchkey.Event{{Kind: latchkey.EventRefresh, Outcome: latchkey.OutcomeGrace}},
			"latchkey_refreshes_total", l("outcome", "grace"), 1},
		{"verification", []latchkey.Event{{Kind: latchkey.EventVerify, Outcome: latchkey.OutcomeExpired}},
			"latchkey_access_token_verifications_total", l("outcome", "expired"), 1},
		{"successful sign-in", []latchkey.Event{{Kind: latchkey.EventSignIn, Grant: "password", Outcome: latchkey.OutcomeSuccess, UserID: "u1", IP: "192.0.2.1"}},
			"latchkey_logins_total", l("grant", "password", "outcome", "success"), 1},
		{"failed sign-in", []latchkey.Event{{Kind: latchkey.EventSignIn, Grant: "id_token", Outcome: latchkey.OutcomeFailure}},
			"latchkey_logins_total", l("grant", "id_token", "outcome", "failure"), 1},
		{"an application's own grant", []latchkey.Event{{Kind: latchkey.EventSignIn, Grant: "magic_link", Outcome: latchkey.OutcomeSuccess}},
			"latchkey_logins_total", l("grant", "magic_link", "outcome", "success"), 1},
		{"session started", []latchkey.Event{{Kind: latchkey.EventLogin, UserID: "u1", SessionID: "s1"}},
			"latchkey_sessions_started_total", l(), 1},
		{"revocation", []latchkey.Event{{Kind: latchkey.EventRevoke, Reason: latchkey.ReasonPasswordChanged}},
			"latchkey_revocations_total", l("reason", "password_changed"), 1},
		{"reuse detected", []latchkey.Event{{Kind: latchkey.EventReuse, Generation: 1, Current: 3}},
			"latchkey_refresh_reuse_detected_total", l(), 1},
		{"rate limited", []latchkey.Event{{Kind: latchkey.EventRateLimited, Grant: "password", IP: "192.0.2.1"}},
			"latchkey_login_rate_limited_total", l("grant", "password"), 1},
		{"password changed", []latchkey.Event{{Kind: latchkey.EventPasswordChanged}},
			"latchkey_account_events_total", l("kind", "password_changed"), 1},
		{"store call timed", []latchkey.Event{{Kind: latchkey.EventStore, Op: "rotate_session", Duration: time.Millisecond}},
			"latchkey_store_operation_duration_seconds", l("op", "rotate_session"), 1},
		{"store error", []latchkey.Event{{Kind: latchkey.EventStore, Op: "rotate_session", Err: errors.New("down")}, {Kind: latchkey.EventStore, Op: "rotate_session"}},
			"latchkey_store_errors_total", l("op", "rotate_session"), 1},
		{"feed lag is the last one", []latchkey.Event{{Kind: latchkey.EventFeed, Duration: 3 * time.Second}, {Kind: latchkey.EventFeed, Duration: 1500 * time.Millisecond}},
			"latchkey_revocation_feed_lag_seconds", l(), 1.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			for _, e := range tc.events {
				m.Observe(ctx, e)
			}
			if got, ok := value(gather(t, m), tc.metric, tc.labels); !ok || got != tc.want {
				t.Errorf("%s%v = %v (present: %v), want %v", tc.metric, tc.labels, got, ok, tc.want)
			}
		})
	}
}

// Every series whose labels are known in advance exists at zero before its
// first event, so rate() and alert rules work from the first scrape.
func TestKnownSeriesStartAtZero(t *testing.T) {
	fams := gather(t, metrics.New())
	want := map[string][]map[string]string{
		"latchkey_refreshes_total": {l("outcome", "rotated"), l("outcome", "grace"), l("outcome", "reused"),
			l("outcome", "expired"), l("outcome", "revoked"), l("outcome", "invalid"), l("outcome", "unavailable")},
		"latchkey_access_token_verifications_total": {l("outcome", "ok"), l("outcome", "expired"),
			l("outcome", "revoked"), l("outcome", "invalid"), l("outcome", "unavailable")},
		"latchkey_revocations_total": {l("reason", "logout"), l("reason", "reused"), l("reason", "password_changed"), l("reason", "admin")},
		"latchkey_logins_total": {l("grant", "password", "outcome", "success"), l("grant", "password", "outcome", "failure"),
			l("grant", "id_token", "outcome", "success"), l("grant", "id_token", "outcome", "failure")},
		"latchkey_login_rate_limited_total":     {l("grant", "password"), l("grant", "id_token")},
		"latchkey_refresh_reuse_detected_total": {l()},
		"latchkey_sessions_started_total":       {l()},
		"latchkey_store_errors_total":           {l("op", "rotate_session"), l("op", "revocations_after"), l("op", "create_session")},
		"latchkey_revocation_feed_lag_seconds":  {l()},
		"latchkey_account_events_total":         {l("kind", "password_changed"), l("kind", "user_created")},
	}
	for name, series := range want {
		for _, labels := range series {
			if v, ok := value(fams, name, labels); !ok || v != 0 {
				t.Errorf("%s%v = %v (present: %v), want 0", name, labels, v, ok)
			}
		}
	}
	b := fams["latchkey_build_info"].GetMetric()
	if len(b) != 1 || b[0].GetGauge().GetValue() != 1 || labelsOf(b[0])["goversion"] == "" {
		t.Errorf("latchkey_build_info = %v, want one series at 1 with a goversion", b)
	}
}

// Whatever reaches a label — an application's grants and store operations,
// a client's choice of method, reasons added later — cannot grow the
// number of series without bound.
func TestLabelValuesAreBounded(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	for i := range 1000 {
		v := fmt.Sprintf("v%d", i)
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventSignIn, Grant: v, Outcome: v})
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventRateLimited, Grant: v})
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventRefresh, Outcome: v})
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventVerify, Outcome: v})
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventRevoke, Reason: latchkey.Reason(v)})
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventStore, Op: v, Err: errors.New("x")})
		m.Observe(ctx, latchkey.Event{Kind: latchkey.EventKind(v)})
	}
	// A route per path (as a careless route function would give), and many
	// methods and statuses on one route.
	h := m.Middleware(func(r *http.Request) string { return r.URL.Path })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/p0" {
			w.WriteHeader(200 + len(r.Method)*7%400)
		}
	}))
	for i := range 1000 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", fmt.Sprintf("/p%d", i), nil))
		r := httptest.NewRequest("GET", "/p0", nil)
		r.Method = strings.Repeat("M", i%200+1)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	fams := gather(t, m)
	bounds := map[string]int{
		"latchkey_logins_total":                     65,
		"latchkey_login_rate_limited_total":         33,
		"latchkey_refreshes_total":                  17,
		"latchkey_access_token_verifications_total": 17,
		"latchkey_revocations_total":                17,
		"latchkey_store_errors_total":               65,
		"latchkey_store_operation_duration_seconds": 65,
		"latchkey_account_events_total":             4,
		"latchkey_http_requests_total":              128 + 1 + 64, // 128 routes, other, and /p0's other methods and statuses
		"latchkey_http_request_duration_seconds":    128 + 1 + 1,  // and /p0's other methods
	}
	for name, max := range bounds {
		got := fams[name].GetMetric()
		if len(got) > max {
			t.Errorf("%s has %d series, want at most %d", name, len(got), max)
		}
		if name == "latchkey_account_events_total" {
			continue
		}
		var other float64
		for _, s := range got {
			for _, p := range s.GetLabel() {
				if p.GetValue() == metrics.Other {
					v, _ := value(fams, name, labelsOf(s))
					other += v
					break
				}
			}
		}
		if other == 0 {
			t.Errorf("%s counted nothing under %q", name, metrics.Other)
		}
	}
	for _, s := range fams["latchkey_http_requests_total"].GetMetric() {
		if meth := labelsOf(s)["method"]; meth != metrics.Other && meth != "GET" {
			t.Errorf("method %q was counted under its own name", meth)
		}
	}
}

// The route label is the ServeMux pattern, never the path; a path no
// pattern matches has one label.
func TestRouteLabelIsThePattern(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/sessions/{id}", ok)
	mux.Handle("POST /login", ok)
	h := m.Middleware(nil)(mux)
	for _, req := range []struct{ method, path string }{
		{"DELETE", "/sessions/3f2a"}, {"DELETE", "/sessions/b77c"}, {"POST", "/login"}, {"GET", "/login"},
		{"GET", "/no/such/path"}, {"GET", "/users/alice"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	fams := gather(t, m)
	for _, want := range []struct {
		labels map[string]string
		n      float64
	}{
		{l("route", "/sessions/{id}", "method", "DELETE", "code", "200"), 2},
		{l("route", "POST /login", "method", "POST", "code", "200"), 1},
		{l("route", metrics.Unmatched, "method", "GET", "code", "405"), 1},
		{l("route", metrics.Unmatched, "method", "GET", "code", "404"), 2},
	} {
		if got, _ := value(fams, "latchkey_http_requests_total", want.labels); got != want.n {
			t.Errorf("latchkey_http_requests_total%v = %v, want %v", want.labels, got, want.n)
		}
	}
	if got, _ := value(fams, "latchkey_http_request_duration_seconds", l("route", "/sessions/{id}", "method", "DELETE")); got != 2 {
		t.Errorf("latchkey_http_request_duration_seconds count = %v, want 2", got)
	}
	for _, s := range fams["latchkey_http_requests_total"].GetMetric() {
		if r := labelsOf(s)["route"]; strings.Contains(r, "3f2a") || strings.Contains(r, "alice") || strings.Contains(r, "/no/") {
			t.Errorf("route label %q holds a path", r)
		}
	}
}

// Driven through the token server, the metrics count what happened, label
// routes by pattern, and no label holds a user, session, token, address or
// user agent.
func TestTokenServer(t *testing.T) {
	ts := newTokenServer(t, true)
	p := ts.login(t)
	ts.do("POST", "/login", "", map[string]string{"username": "test", "password": "wrong"})
	for range 3 {
		if code, _ := ts.do("GET", "/protected", p.AccessToken, nil); code != 200 {
			t.Fatalf("GET /protected = %d", code)
		}
	}
	code, next := ts.refresh(p.RefreshToken)
	if code != 200 {
		t.Fatalf("POST /refresh = %d", code)
	}
	if code, _ := ts.refresh(p.RefreshToken); code != 401 {
		t.Fatalf("replayed POST /refresh = %d, want 401", code)
	}
	ts.do("DELETE", "/sessions/"+p.SessionID, next.AccessToken, nil)
	ts.do("GET", "/no/such/"+p.UUID, "", nil)

	fams := gather(t, ts.metrics)
	for _, want := range []struct {
		name   string
		labels map[string]string
		v      float64
	}{
		{"latchkey_logins_total", l("grant", "password", "outcome", "success"), 1},
		{"latchkey_logins_total", l("grant", "password", "outcome", "failure"), 1},
		{"latchkey_sessions_started_total", l(), 1},
		{"latchkey_refreshes_total", l("outcome", "rotated"), 1},
		{"latchkey_refreshes_total", l("outcome", "reused"), 1},
		{"latchkey_refresh_reuse_detected_total", l(), 1},
		{"latchkey_revocations_total", l("reason", "reused"), 1},
		{"latchkey_access_token_verifications_total", l("outcome", "ok"), 3},
		{"latchkey_http_requests_total", l("route", "/protected", "method", "GET", "code", "200"), 3},
		{"latchkey_http_requests_total", l("route", "/refresh", "method", "POST", "code", "401"), 1},
		{"latchkey_http_requests_total", l("route", "/login", "method", "POST", "code", "401"), 1},
		{"latchkey_http_requests_total", l("route", "/sessions/{id}", "method", "DELETE", "code", "401"), 1},
		{"latchkey_http_requests_total", l("route", metrics.Unmatched, "method", "GET", "code", "404"), 1},
		{"latchkey_signing_keys", l("state", "current"), 1},
	} {
		if got, _ := value(fams, want.name, want.labels); got != want.v {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.v)
		}
	}
	if n, _ := value(fams, "latchkey_store_operation_duration_seconds", l("op", "rotate_session")); n == 0 {
		t.Error("no rotate_session store call was timed")
	}
	secrets := []string{p.UUID, p.SessionID, p.AccessToken, p.RefreshToken, next.RefreshToken, "test", "198.51.100.7", "metrics-test-agent"}
	for name, f := range fams {
		for _, s := range f.GetMetric() {
			for _, lp := range s.GetLabel() {
				for _, secret := range secrets {
					if strings.Contains(lp.GetValue(), secret) {
						t.Errorf("%s has label %s=%q, which holds %q", name, lp.GetName(), lp.GetValue(), secret)
					}
				}
			}
		}
	}
}

func TestWatchKeys(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	secret := make([]byte, 32)
	rand.Read(secret)
	clk := fakeclock.New(time.Now().Truncate(time.Second))
	a, err := latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m := metrics.New()
	if _, ok := gather(t, m)["latchkey_signing_key_age_seconds"]; ok {
		t.Error("latchkey_signing_key_age_seconds is reported before WatchKeys")
	}
	m.WatchKeys(a)
	clk.Add(90 * time.Minute)
	fams := gather(t, m)
	if age, _ := value(fams, "latchkey_signing_key_age_seconds", l()); age < 90*60 || age > 90*60+60 {
		t.Errorf("latchkey_signing_key_age_seconds = %v, want about %v", age, 90*60)
	}
	var total float64
	for _, s := range []string{"current", "next", "retired"} {
		v, ok := value(fams, "latchkey_signing_keys", l("state", s))
		if !ok {
			t.Errorf("latchkey_signing_keys{state=%q} is missing", s)
		}
		total += v
	}
	if want := float64(len(a.Keys().Info())); total != want {
		t.Errorf("latchkey_signing_keys add up to %v, want %v", total, want)
	}
}

// Observing the events of the hot path (a verification, a refresh, a store
// call) allocates nothing.
func TestObserveDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	for _, e := range []latchkey.Event{
		{Kind: latchkey.EventVerify, Outcome: latchkey.OutcomeOK, UserID: "u", SessionID: "s"},
		{Kind: latchkey.EventRefresh, Outcome: latchkey.OutcomeRotated},
		{Kind: latchkey.EventStore, Op: "rotate_session", Duration: time.Millisecond},
		{Kind: latchkey.EventSignIn, Grant: "password", Outcome: latchkey.OutcomeSuccess},
		{Kind: latchkey.EventFeed, Duration: time.Second},
	} {
		if n := testing.AllocsPerRun(1000, func() { m.Observe(ctx, e) }); n != 0 {
			t.Errorf("Observe(%s %s) allocates %v times", e.Kind, e.Outcome, n)
		}
	}
}

// docs/operations.md explains every metric, and the alert rules and the
// Grafana dashboard use only metrics that exist.
func TestDocumented(t *testing.T) {
	m := metrics.New()
	m.WatchKeys(newTokenServer(t, false).auth)
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc, 100)
	go func() { m.Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		names[fqName.FindStringSubmatch(d.String())[1]] = true
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if !strings.Contains(string(ops), "`"+n+"`") {
			t.Errorf("docs/operations.md does not explain `%s`", n)
		}
	}
	for _, file := range []string{"prometheus-rules.yml", "grafana-dashboard.json"} {
		b, err := os.ReadFile("../docs/" + file)
		if err != nil {
			t.Fatal(err)
		}
		used := regexp.MustCompile(`latchkey_[a-z_]+`).FindAllString(string(b), -1)
		if len(used) == 0 {
			t.Fatalf("docs/%s uses no latchkey metric", file)
		}
		for _, u := range used {
			base := u
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(u, suffix); ok && names[b] {
					base = b
				}
			}
			if !names[base] {
				t.Errorf("docs/%s uses %s, which is no metric", file, u)
			}
		}
	}
}
