package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

var metricsURL = regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`)

// startServeWithMetrics runs serve with a metrics listener on a free port and
// returns the server's URL and the metrics URL.
func startServeWithMetrics(t *testing.T, args []string, env map[string]string) (string, string, func() error) {
	t.Helper()
	url, logs, stop := startServe(t, args, env)
	m := metricsURL.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("serve logged no metrics address:\n%s", logs.String())
	}
	return url, m[1], stop
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// --metrics-addr (here through its variable) serves /metrics on its own
// listener, never on the public one, and stops with the server.
func TestMetricsListener(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "lk.db")
	url, murl, stop := startServeWithMetrics(t, []string{"--demo", "--store", db},
		map[string]string{"LATCHKEY_METRICS_ADDR": "127.0.0.1:0"})
	if code, _ := post(t, url+"/login", "", `{"username":"test","password":"test"}`); code != 200 {
		t.Fatalf("POST /login = %d", code)
	}
	if code, body := getText(t, url+"/metrics"); code != 404 || strings.Contains(body, "latchkey_") {
		t.Errorf("GET /metrics on the public address = %d %q, want 404 without metrics", code, body)
	}
	if code, _ := getText(t, strings.TrimSuffix(murl, "/metrics")+"/"); code != 404 {
		t.Errorf("GET / on the metrics address = %d, want 404", code)
	}
	code, body := getText(t, murl)
	if code != 200 {
		t.Fatalf("GET %s = %d", murl, code)
	}
	for _, want := range []string{
		`latchkey_logins_total{grant="password",outcome="success"} 1`,
		`latchkey_sessions_started_total 1`,
		`latchkey_refreshes_total{outcome="reused"} 0`,
		`latchkey_http_requests_total{code="200",method="POST",route="/login"} 1`,
		`latchkey_signing_keys{state="current"} 1`,
		`latchkey_signing_key_age_seconds `,
		`latchkey_build_info{goversion=`,
		`latchkey_revocation_feed_lag_seconds `,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(murl); err == nil {
		t.Error("the metrics listener still answers after serve stopped")
	}
}

func TestMetricsAddrRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := "sqlite:" + filepath.Join(t.TempDir(), "lk.db")
	err = run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--store", db, "--metrics-addr", ln.Addr().String()},
		envFunc(nil), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("serve with a --metrics-addr in use: %v, want an error naming --metrics-addr", err)
	}
}

// prometheusBins returns the Prometheus server binary of LATCHKEY_TEST_PROMETHEUS
// (Debian's prometheus package: /usr/bin/prometheus), and promtool beside it.
func prometheusBins(t *testing.T) (server, promtool string) {
	t.Helper()
	server = os.Getenv("LATCHKEY_TEST_PROMETHEUS")
	if server == "" {
		t.Skip("LATCHKEY_TEST_PROMETHEUS is unset: set it to a prometheus binary (apt-get install prometheus; .ci/run does) to test against a real Prometheus")
	}
	promtool = filepath.Join(filepath.Dir(server), "promtool")
	for _, bin := range []string{server, promtool} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("LATCHKEY_TEST_PROMETHEUS=%s: %v", server, err)
		}
	}
	return server, promtool
}

// The shipped alert rules load, and fire on the series they are meant for.
func TestPrometheusRules(t *testing.T) {
	_, promtool := prometheusBins(t)
	rules, err := filepath.Abs("../../docs/prometheus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules docs/prometheus-rules.yml: %v\n%s", err, out)
	}
	test := filepath.Join(t.TempDir(), "rules_test.yml")
	if err := os.WriteFile(test, []byte(strings.ReplaceAll(rulesTest, "RULES", rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", test).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// rulesTest is a promtool unit test of docs/prometheus-rules.yml (RULES):
// each alert fires on the series it is for, and not on a quiet node.
const rulesTest = `
rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'latchkey_refresh_reuse_detected_total{job="lk",instance="a"}'
        values: '0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
      - series: 'latchkey_refresh_reuse_detected_total{job="lk",instance="b"}'
        values: '0x20'
      - series: 'latchkey_logins_total{job="lk",instance="a",grant="password",outcome="failure"}'
        values: '0+120x20'
      - series: 'latchkey_logins_total{job="lk",instance="b",grant="password",outcome="failure"}'
        values: '0+60x20'
      - series: 'latchkey_logins_total{job="lk",instance="a",grant="password",outcome="success"}'
        values: '0+600x20'
      - series: 'latchkey_login_rate_limited_total{job="lk",instance="a",grant="password"}'
        values: '0+60x20'
      - series: 'latchkey_revocation_feed_lag_seconds{job="lk",instance="a"}'
        values: '0 0 30 90 150 210 270 330 390 450 510 570 630 690 750 810 870 930 990 1050 1110'
      - series: 'latchkey_revocation_feed_lag_seconds{job="lk",instance="b"}'
        values: '0.4x20'
      - series: 'latchkey_store_errors_total{job="lk",instance="a",op="rotate_session"}'
        values: '0+30x20'
      - series: 'latchkey_store_operation_duration_seconds_count{job="lk",instance="a",op="rotate_session"}'
        values: '0+600x20'
      - series: 'latchkey_store_errors_total{job="lk",instance="b",op="rotate_session"}'
        values: '0x20'
      - series: 'latchkey_store_operation_duration_seconds_count{job="lk",instance="b",op="rotate_session"}'
        values: '0+600x20'
      - series: 'latchkey_signing_key_age_seconds{job="lk",instance="a"}'
        values: '8000000+60x200'
    alert_rule_test:
      - eval_time: 5m
        alertname: LatchkeyRefreshTokenReuse
        exp_alerts:
          - exp_labels: {severity: warning, job: lk, instance: a}
            exp_annotations:
              summary: Refresh-token reuse detected on a
              description: 1 replayed refresh token(s) in 10 minutes; each revoked its session. See docs/operations.md.
      - eval_time: 20m
        alertname: LatchkeyRefreshTokenReuse
        exp_alerts: []
      - eval_time: 2m
        alertname: LatchkeyLoginFailuresHigh
        exp_alerts: []
      - eval_time: 12m
        alertname: LatchkeyLoginFailuresHigh
        exp_alerts:
          - exp_labels: {severity: warning, job: lk}
            exp_annotations:
              summary: 3 failed sign-ins per second (lk)
              description: Password guessing or credential stuffing? See docs/operations.md.
      - eval_time: 15m
        alertname: LatchkeyLoginRateLimited
        exp_alerts:
          - exp_labels: {severity: info, job: lk}
            exp_annotations:
              summary: The login rate limit refuses 1 attempts per second (lk)
              description: A guessing attack the limiter is holding back. See docs/operations.md.
      - eval_time: 1m
        alertname: LatchkeyRevocationFeedLagging
        exp_alerts: []
      - eval_time: 5m
        alertname: LatchkeyRevocationFeedLagging
        exp_alerts:
          - exp_labels: {severity: critical, job: lk, instance: a}
            exp_annotations:
              summary: a is 3m 30s behind the revocation feed
              description: Access tokens of sessions revoked on other nodes are still accepted here. See docs/operations.md.
      - eval_time: 15m
        alertname: LatchkeyStoreErrors
        exp_alerts:
          - exp_labels: {severity: critical, job: lk, instance: a}
            exp_annotations:
              summary: 5% of store calls fail on a
              description: latchkey_store_errors_total says which operations. See docs/operations.md.
      - eval_time: 90m
        alertname: LatchkeySigningKeyOld
        exp_alerts:
          - exp_labels: {severity: info, job: lk}
            exp_annotations:
              summary: The signing key of lk is 92d 15h 43m 20s old
              description: Rotate it with latchkey keys rotate. See docs/operations.md.
`

// A real Prometheus scrapes a running serve, and its query API shows exactly
// the refreshes, reuse and logins this test caused; the reuse alert of
// docs/prometheus-rules.yml fires.
func TestPrometheusScrapesServe(t *testing.T) {
	bin, _ := prometheusBins(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "lk.db")
	api, murl, _ := startServeWithMetrics(t, []string{"--demo", "--store", db, "--reuse-grace", "0s", "--metrics-addr", "127.0.0.1:0"}, nil)
	target := strings.TrimSuffix(strings.TrimPrefix(murl, "http://"), "/metrics")
	prom := startPrometheus(t, bin, target)

	// Until Prometheus has scraped the target, the counters are not there.
	waitQuery(t, prom, `up{job="latchkey"}`, 1)
	for i := range 3 {
		code, p := post(t, api+"/login", "", `{"username":"test","password":"test"}`)
		if code != 200 {
			t.Fatalf("login %d = %d", i, code)
		}
		old := p["refresh_token"].(string)
		if code, _ := post(t, api+"/refresh", "", `{"refresh_token":"`+old+`"}`); code != 200 {
			t.Fatalf("refresh %d = %d", i, code)
		}
		if code, body := post(t, api+"/refresh", "", `{"refresh_token":"`+old+`"}`); code != 401 || body["error"] != "refresh_reused" {
			t.Fatalf("replayed refresh %d = %d %v, want 401 refresh_reused", i, code, body)
		}
	}
	if code, _ := post(t, api+"/login", "", `{"username":"test","password":"wrong"}`); code != 401 {
		t.Fatalf("wrong password = %d, want 401", code)
	}

	for _, q := range []struct {
		query string
		want  float64
	}{
		{`latchkey_refreshes_total{outcome="reused"}`, 3},
		{`latchkey_refresh_reuse_detected_total`, 3},
		{`latchkey_refreshes_total{outcome="rotated"}`, 3},
		{`latchkey_revocations_total{reason="reused"}`, 3},
		{`latchkey_logins_total{grant="password",outcome="success"}`, 3},
		{`latchkey_logins_total{grant="password",outcome="failure"}`, 1},
		{`latchkey_sessions_started_total`, 3},
		{`sum(latchkey_http_requests_total{route="/refresh",method="POST",code="401"})`, 3},
		{`sum(latchkey_http_requests_total{route="/refresh",method="POST",code="200"})`, 3},
	} {
		waitQuery(t, prom, q.query, q.want)
	}
	// Every query of the Grafana dashboard is one Prometheus accepts.
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$job", ".+")
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			var r struct {
				Status string `json:"status"`
			}
			promGet(t, prom+"/api/v1/query?query="+url.QueryEscape(grafana.Replace(target.Expr)), &r)
			if r.Status != "success" {
				t.Errorf("dashboard panel %q: query %q: %s", p.Title, target.Expr, r.Status)
			}
		}
	}

	// The reuse alert of the shipped rules fires.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var alerts struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		promGet(t, prom+"/api/v1/alerts", &alerts)
		fired := false
		for _, a := range alerts.Data.Alerts {
			if a.Labels["alertname"] == "LatchkeyRefreshTokenReuse" && a.State == "firing" {
				fired = true
			}
		}
		if fired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LatchkeyRefreshTokenReuse did not fire; alerts: %+v", alerts.Data.Alerts)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// startPrometheus runs a Prometheus server that scrapes target every second
// and evaluates docs/prometheus-rules.yml, and returns its URL.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs("../../docs/prometheus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: latchkey
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		url, inUse := runPrometheus(t, bin, cfgPath, filepath.Join(dir, fmt.Sprint("data", attempt)))
		if !inUse {
			return url
		}
		if attempt == 3 {
			t.Fatal("prometheus found no free port in 4 attempts")
		}
	}
}

// runPrometheus starts Prometheus on a free port until the test ends and
// returns its URL, or reports that another process took the port first.
func runPrometheus(t *testing.T, bin, cfgPath, data string) (url string, inUse bool) {
	t.Helper()
	addr := freeAddr(t)
	logs := &testenv.Buffer{}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+data,
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	url = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Cleanup(stop)
				return url, false
			}
		}
		select {
		case err := <-exited:
			if strings.Contains(logs.String(), "address already in use") {
				return "", true
			}
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("prometheus did not become ready:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func promGet(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, b)
	}
}

// waitQuery polls Prometheus's query API until query has one sample equal to
// want; a value beyond want fails at once (counters only grow).
func waitQuery(t *testing.T, prom, query string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		promGet(t, prom+"/api/v1/query?query="+url.QueryEscape(query), &r)
		var got []float64
		for _, s := range r.Data.Result {
			str, _ := s.Value[1].(string)
			v, err := strconv.ParseFloat(str, 64)
			if err != nil {
				t.Fatalf("%s: sample %v", query, s.Value)
			}
			got = append(got, v)
		}
		switch {
		case len(got) == 1 && got[0] == want:
			return
		case len(got) > 1 || (len(got) == 1 && got[0] > want):
			t.Fatalf("Prometheus: %s = %v, want exactly %v", query, got, want)
		case time.Now().After(deadline):
			t.Fatalf("Prometheus: %s = %v after 30s, want %v", query, got, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
