// Package load drives a running latchkey server over HTTP and measures it: the
// engine behind cmd/latchkey-bench. Every run is bounded in time and in count,
// and targets loopback unless told otherwise.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Modes of a run.
const (
	ModeLogin     = "login"     // POST /login
	ModeRefresh   = "refresh"   // each worker chains its own refresh tokens
	ModeProtected = "protected" // GET /protected with a token per worker
	ModeMixed     = "mixed"     // 1 login : 20 refreshes : 1000 protected
	ModeRace      = "race"      // every worker refreshes the same token at once, round after round
)

// Config describes a run.
type Config struct {
	Target      string        // base URL, e.g. http://127.0.0.1:8080
	Mode        string        // one of the Mode constants
	Concurrency int           // workers; default 32
	Duration    time.Duration // upper bound on the run; default 10 s
	Requests    int           // upper bound on requests (race: rounds); 0 = no bound but Duration
	Users       int           // distinct accounts to log in as; default 1
	Username    string        // account prefix; users are Username, Username-1, …; default "bench"
	Password    string        // their password; default "bench-password"
	Progress    io.Writer     // a progress line per second; nil for none
	Client      *http.Client  // nil: a client with keep-alive pools sized to Concurrency
}

// Result is what a run measured.
type Result struct {
	Mode        string         `json:"mode"`
	Target      string         `json:"target"`
	Concurrency int            `json:"concurrency"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	P50         float64        `json:"p50_ms"`
	P90         float64        `json:"p90_ms"`
	P99         float64        `json:"p99_ms"`
	Max         float64        `json:"max_ms"`
	ByStatus    map[int]int    `json:"by_status"`
	ByCode      map[string]int `json:"by_code,omitempty"`
	Rounds      int            `json:"rounds,omitempty"` // race mode
	Forks       int            `json:"forks,omitempty"`  // race mode: rounds that handed out two different tokens
}

func (c *Config) defaults() error {
	if c.Target == "" {
		c.Target = "http://127.0.0.1:8080"
	}
	switch c.Mode {
	case ModeLogin, ModeRefresh, ModeProtected, ModeMixed, ModeRace:
	default:
		return fmt.Errorf("load: unknown mode %q (login, refresh, protected, mixed, race)", c.Mode)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Duration > time.Hour {
		return errors.New("load: a run lasts an hour at most")
	}
	if c.Users <= 0 {
		c.Users = 1
	}
	if c.Username == "" {
		c.Username = "bench"
	}
	if c.Password == "" {
		c.Password = "bench-password"
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: c.Concurrency * 2, MaxIdleConnsPerHost: c.Concurrency * 2, IdleConnTimeout: time.Minute,
		}}
	}
	return nil
}

// sample is one request's outcome.
type sample struct {
	d      time.Duration
	status int
	code   string
}

// recorder collects samples from every worker.
type recorder struct {
	mu      sync.Mutex
	samples []sample
	count   atomic.Int64
	limit   int64
}

func (r *recorder) add(s sample) {
	r.count.Add(1)
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

// more reports whether another request may start.
func (r *recorder) more() bool { return r.limit <= 0 || r.count.Load() < r.limit }

// client is one worker's session with the server.
type client struct {
	cfg     *Config
	access  string
	refresh string
}

type pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// do sends one request and decodes a JSON answer into out (if any).
func (c *client) do(ctx context.Context, method, path, bearer string, body any, out *pair) sample {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Target+path, rd)
	if err != nil {
		return sample{code: "client_error"}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return sample{d: time.Since(start), code: "transport_error"}
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := sample{d: time.Since(start), status: resp.StatusCode}
	var p pair
	if json.Unmarshal(raw, &p) == nil {
		s.code = p.Error
		if out != nil {
			*out = p
		}
	}
	return s
}

func (c *client) login(ctx context.Context, user string) sample {
	var p pair
	s := c.do(ctx, "POST", "/login", "", map[string]string{"username": user, "password": c.cfg.Password}, &p)
	if s.status == 200 {
		c.access, c.refresh = p.AccessToken, p.RefreshToken
	}
	return s
}

// setupLogin logs in outside the measurement. The server limits concurrent
// login attempts per account and address, so workers that start together are
// answered 429 beyond the first few; they wait a little and try again.
func (c *client) setupLogin(ctx context.Context, user string) sample {
	for {
		s := c.login(ctx, user)
		if s.status != http.StatusTooManyRequests {
			return s
		}
		select {
		case <-ctx.Done():
			return s
		case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
		}
	}
}

func (c *client) refreshOnce(ctx context.Context) sample {
	var p pair
	s := c.do(ctx, "POST", "/refresh", c.refresh, nil, &p)
	if s.status == 200 {
		c.access, c.refresh = p.AccessToken, p.RefreshToken
	}
	return s
}

func (cfg *Config) user(i int) string {
	if i%cfg.Users == 0 {
		return cfg.Username
	}
	return fmt.Sprintf("%s-%d", cfg.Username, i%cfg.Users)
}

// Prepare registers the run's accounts (ignoring "taken"), so a fresh server
// with registration open can be measured at once.
func Prepare(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	c := &client{cfg: &cfg}
	for i := range cfg.Users {
		s := c.do(ctx, "POST", "/register", "", map[string]string{"username": cfg.user(i), "password": cfg.Password}, nil)
		if s.status != 201 && s.code != "username_taken" {
			return fmt.Errorf("load: registering %s: status %d %s", cfg.user(i), s.status, s.code)
		}
	}
	return nil
}

// Run drives the target until Duration passes or Requests are done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Mode: cfg.Mode, Target: cfg.Target, Concurrency: cfg.Concurrency}
	var clients []*client
	if cfg.Mode != ModeRace {
		var err error
		if clients, err = setup(ctx, &cfg); err != nil {
			return res, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	rec := &recorder{limit: int64(cfg.Requests)}
	stopProgress := progress(cfg.Progress, rec, cfg.Mode)
	start := time.Now()
	var err error
	if cfg.Mode == ModeRace {
		res.Rounds, res.Forks, err = race(ctx, &cfg, rec)
	} else {
		err = steady(ctx, &cfg, rec, clients)
	}
	elapsed := time.Since(start)
	stopProgress()
	summarize(&res, rec.samples, elapsed)
	return res, err
}

// setupTimeout bounds the logins before a measurement (each worker's first
// pair: argon2id, a few at a time, behind the login rate limit).
const setupTimeout = 2 * time.Minute

// setup makes one client per worker and, except in login mode, logs each in
// before the measurement starts.
func setup(ctx context.Context, cfg *Config) ([]*client, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	clients := make([]*client, cfg.Concurrency)
	errs := make([]error, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range clients {
		clients[w] = &client{cfg: cfg}
		if cfg.Mode == ModeLogin {
			continue
		}
		wg.Go(func() {
			if s := clients[w].setupLogin(ctx, cfg.user(w)); s.status != 200 {
				errs[w] = fmt.Errorf("load: worker %d cannot log in as %s: status %d %s", w, cfg.user(w), s.status, s.code)
			}
		})
	}
	wg.Wait()
	return clients, errors.Join(errs...)
}

// steady runs the non-race modes: each worker (logged in by setup) loops.
func steady(ctx context.Context, cfg *Config, rec *recorder, clients []*client) error {
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Concurrency)
	for w := range cfg.Concurrency {
		wg.Go(func() {
			c := clients[w]
			user := cfg.user(w)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil && rec.more() {
				var s sample
				switch cfg.Mode {
				case ModeLogin:
					s = c.login(ctx, user)
				case ModeRefresh:
					s = c.refreshOnce(ctx)
				case ModeProtected:
					s = c.do(ctx, "GET", "/protected", c.access, nil, nil)
				case ModeMixed:
					switch n := rng.IntN(1021); {
					case n == 0:
						s = c.login(ctx, user)
					case n <= 20:
						s = c.refreshOnce(ctx)
					default:
						s = c.do(ctx, "GET", "/protected", c.access, nil, nil)
					}
				}
				if ctx.Err() != nil && s.status == 0 {
					return // cut off by the deadline: not a server error
				}
				rec.add(s)
				if cfg.Mode == ModeRefresh && s.status != 200 {
					if l := c.setupLogin(ctx, user); l.status != 200 { // start a new chain
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// race logs in once per round, then every worker presents the same refresh
// token at the same moment; all must succeed with one and the same new token.
func race(ctx context.Context, cfg *Config, rec *recorder) (rounds, forks int, err error) {
	lead := &client{cfg: cfg}
	for ctx.Err() == nil && (cfg.Requests <= 0 || rounds < cfg.Requests) {
		if s := lead.setupLogin(ctx, cfg.user(rounds)); s.status != 200 {
			if ctx.Err() != nil {
				break
			}
			return rounds, forks, fmt.Errorf("load: race login: status %d %s", s.status, s.code)
		}
		token := lead.refresh
		got := make([]string, cfg.Concurrency)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for w := range cfg.Concurrency {
			wg.Go(func() {
				c := &client{cfg: cfg, refresh: token}
				<-gate
				s := c.refreshOnce(ctx)
				if ctx.Err() != nil && s.status == 0 {
					return
				}
				rec.add(s)
				if s.status == 200 {
					got[w] = c.refresh
				}
			})
		}
		close(gate)
		wg.Wait()
		distinct := map[string]bool{}
		for _, g := range got {
			if g != "" {
				distinct[g] = true
			}
		}
		if len(distinct) > 1 {
			forks++
		}
		rounds++
	}
	return rounds, forks, nil
}

func summarize(res *Result, samples []sample, elapsed time.Duration) {
	res.ByStatus = map[int]int{}
	res.ByCode = map[string]int{}
	ds := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		res.ByStatus[s.status]++
		if s.status != 200 && s.status != 201 && s.status != 204 {
			res.Errors++
			if s.code != "" {
				res.ByCode[s.code]++
			}
		}
		ds = append(ds, s.d)
	}
	res.Requests = len(samples)
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.PerSecond = float64(res.Requests) / res.Seconds
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		i := int(p * float64(len(ds)-1))
		return float64(ds[i]) / float64(time.Millisecond)
	}
	res.P50, res.P90, res.P99, res.Max = q(0.50), q(0.90), q(0.99), q(1)
}

// progress prints a line a second until stopped.
func progress(w io.Writer, rec *recorder, mode string) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start, last := time.Now(), int64(0)
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := rec.count.Load()
				fmt.Fprintf(w, "%s: %5.0fs  %8d requests  %8d/s\n", mode, time.Since(start).Seconds(), n, n-last)
				last = n
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Format writes res as a human-readable report.
func Format(w io.Writer, res Result) {
	fmt.Fprintf(w, "mode %s against %s, %d clients, %.1f s\n", res.Mode, res.Target, res.Concurrency, res.Seconds)
	fmt.Fprintf(w, "  requests  %d (%d errors)\n", res.Requests, res.Errors)
	fmt.Fprintf(w, "  throughput %.0f/s\n", res.PerSecond)
	fmt.Fprintf(w, "  latency   p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", res.P50, res.P90, res.P99, res.Max)
	var statuses []int
	for s := range res.ByStatus {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	for _, s := range statuses {
		fmt.Fprintf(w, "  status %d: %d\n", s, res.ByStatus[s])
	}
	for c, n := range res.ByCode {
		fmt.Fprintf(w, "  error %s: %d\n", c, n)
	}
	if res.Mode == ModeRace {
		fmt.Fprintf(w, "  rounds %d, forks %d\n", res.Rounds, res.Forks)
	}
}
