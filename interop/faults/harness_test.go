package faults_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultsEnv turns the fault tests on: they start servers, mount file systems
// and make network namespaces, so they run only where CI asks for them.
const faultsEnv = "LATCHKEY_TEST_FAULTS"

var (
	binDir  string // holds the latchkey binary, built once per run
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	dir, err := newTempDir("bin", func(string) {})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireFaults skips the test unless LATCHKEY_TEST_FAULTS=1, and fails it if
// a program it needs is missing.
func requireFaults(t *testing.T, programs ...string) {
	t.Helper()
	if os.Getenv(faultsEnv) != "1" {
		t.Skip(faultsEnv + " is not 1: skipping the fault-injection tests (they start their own PostgreSQL, Redis and Redis Cluster, mount a tmpfs and make network namespaces, as root)")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but the tests are not running as root: they mount file systems, make network namespaces and run PostgreSQL as the postgres user", faultsEnv)
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=1 but %s is not installed (.ci/run installs it): %v", faultsEnv, p, err)
		}
	}
}

// latchkeyBin builds cmd/latchkey once and returns its path.
func latchkeyBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "latchkey")
		args := []string{"build", "-o", binPath}
		if raceBuild {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/latchkey/latchkey/cmd/latchkey")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	// The binary must be reachable by processes run as other users too.
	os.Chmod(binDir, 0o755)
	return binPath
}

// dieWithTest makes a child process get SIGKILL when the test process dies,
// so that a crashed or killed run leaves no server behind.
func dieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// tempDir makes a directory named lkfaults-KIND-PID-… and returns it. Before
// that, for each such directory of a run whose process is gone, it calls
// leftover (which stops what may still use it) and removes the directory:
// what a crashed run left behind is cleaned up by the next one.
func tempDir(t *testing.T, kind string, leftover func(dir string)) string {
	t.Helper()
	dir, err := newTempDir(kind, leftover)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func newTempDir(kind string, leftover func(dir string)) (string, error) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "lkfaults-"+kind+"-*"))
	for _, d := range old {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "lkfaults-"+kind+"-%d-", &pid); err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // a run still going
		}
		leftover(d)
		os.RemoveAll(d)
	}
	return os.MkdirTemp("", fmt.Sprintf("lkfaults-%s-%d-", kind, os.Getpid()))
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 20 ms until it holds or within has passed.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer collects a process's standard error line by line.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) add(s string) {
	b.mu.Lock()
	b.lines = append(b.lines, s)
	b.mu.Unlock()
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// tail is the last n lines.
func (b *logBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines[max(0, len(b.lines)-n):], "\n")
}

// matching is the last n lines containing s.
func (b *logBuffer) matching(s string, n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// count is the number of lines containing s.
func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// broken are the marks of a server in trouble in its standard error: a panic
// (recovered by the handler or not), a runtime fatal error, a data race.
var broken = regexp.MustCompile(`(?i)panic|fatal error:|DATA RACE|status=500|code=internal_error`)

// node is one `latchkey serve` process.
type node struct {
	url  string
	logs *logBuffer
}

// newSecret is a fresh LATCHKEY_SECRET for a set of nodes.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

var listening = regexp.MustCompile(`latchkey listening.* addr=(http://[0-9.]+:\d+)`)

// startNode runs latchkey serve with args as its own process, prefixed by
// wrap (e.g. `ip netns exec NS`), and stops it when the test ends; its
// standard error must then show no panic, fatal error or 500.
func startNode(t *testing.T, wrap []string, addr, secret string, args ...string) *node {
	t.Helper()
	argv := append(append([]string{}, wrap...), latchkeyBin(t), "serve", "--addr", addr, "--demo", "--issuer", "http://latchkey.test")
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = dieWithTest()
	cmd.Env = append(os.Environ(), "LATCHKEY_SECRET="+secret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{logs: &logBuffer{}}
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			n.logs.add(sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-done; exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("latchkey serve did not stop within 10 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("latchkey serve's last errors:\n%s", n.logs.matching("level=ERROR", 10))
		}
		var bad []string
		for _, l := range strings.Split(n.logs.String(), "\n") {
			if broken.MatchString(l) {
				bad = append(bad, l)
			}
		}
		if len(bad) > 0 {
			t.Errorf("latchkey serve's standard error shows trouble:\n%s", strings.Join(bad, "\n"))
		}
	})
	select {
	case n.url = <-addrc:
	case err := <-exited:
		t.Fatalf("latchkey serve exited: %v\n%s", err, n.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("latchkey serve did not start within 30 s:\n%s", n.logs.String())
	}
	return n
}

// httpClient talks to the nodes; every request is bounded so that a hang is
// an answer the test sees, not a stuck test.
var httpClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
}

// answer is a response's status and its error code ("" for none).
type answer struct {
	status int
	code   string
	body   map[string]any
}

func (a answer) String() string {
	if a.code == "" {
		return fmt.Sprint(a.status)
	}
	return fmt.Sprintf("%d %s", a.status, a.code)
}

// call sends method url with an optional bearer token and JSON body. A
// transport error (timeout, refused) is answer{status: 0, code: the error}.
func call(ctx context.Context, method, url, bearer, body string) answer {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return answer{code: err.Error()}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{code: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	a := answer{status: resp.StatusCode, body: out}
	if s, ok := out["error"].(string); ok {
		a.code = s
	} else if resp.StatusCode >= 400 {
		a.code = strings.TrimSpace(string(raw))
	}
	return a
}

// login signs the demo user in on url and returns the refresh token.
func login(t *testing.T, url string) (access, refresh string) {
	t.Helper()
	a := call(t.Context(), "POST", url+"/login", "", `{"username":"test","password":"test"}`)
	if a.status != 200 {
		t.Fatalf("login on %s = %v", url, a)
	}
	return a.body["access_token"].(string), a.body["refresh_token"].(string)
}

// healthz is the status of url's /healthz.
func healthz(ctx context.Context, url string) answer { return call(ctx, "GET", url+"/healthz", "", "") }

// client is one signed-in session refreshing in a loop.
type client struct {
	node    string // the URL it refreshes on
	token   string // the last refresh token it received
	lastOK  time.Time
	rotated int    // refreshes answered 200
	ended   answer // the answer that stopped it (status 0 while it runs)
}

// load is many clients, each holding its own session and refreshing it in a
// loop: 200 gives it its next token, 503 unavailable makes it retry the same
// token shortly after, anything else ends it. Every answer is counted.
type load struct {
	mu      sync.Mutex
	clients []*client
	counts  map[string]int
	// unavailableSince counts the 503 unavailable answers since mark.
	unavailable int
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// startLoad signs in n clients on the given nodes (client i on nodes[i%len])
// and starts them refreshing; the load stops at the end of the test.
func startLoad(t *testing.T, n int, nodes ...string) *load {
	t.Helper()
	l := &load{counts: map[string]int{}}
	for i := range n {
		_, rt := login(t, nodes[i%len(nodes)])
		l.clients = append(l.clients, &client{node: nodes[i%len(nodes)], token: rt, lastOK: time.Now()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for _, c := range l.clients {
		l.wg.Go(func() { l.run(ctx, c) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) run(ctx context.Context, c *client) {
	for ctx.Err() == nil {
		l.mu.Lock()
		tok := c.token
		l.mu.Unlock()
		a := call(ctx, "POST", c.node+"/refresh", tok, "")
		if ctx.Err() != nil {
			return // the answer to a cancelled request says nothing
		}
		l.mu.Lock()
		l.counts[a.String()]++
		switch {
		case a.status == 200:
			c.token, c.lastOK = a.body["refresh_token"].(string), time.Now()
			c.rotated++
		case a.status == 503 && a.code == "unavailable":
			l.unavailable++
		default:
			c.ended = a
		}
		l.mu.Unlock()
		if c.ended.status != 0 || c.ended.code != "" {
			return
		}
		if a.status == 200 {
			time.Sleep(5 * time.Millisecond) // leave the two cores some air
		} else {
			time.Sleep(25 * time.Millisecond)
		}
	}
}

// stop ends the load and waits for its clients.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// unavailableCount is the number of 503 unavailable answers so far.
func (l *load) unavailableCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unavailable
}

// allRefreshedSince reports whether every client still running has had a
// 200 after t.
func (l *load) allRefreshedSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.clients {
		if c.ended.status == 0 && c.ended.code == "" && !c.lastOK.After(t) {
			return false
		}
	}
	return true
}

// summary is the answers counted, most frequent first.
func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.counts))
	for k := range l.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return l.counts[keys[i]] > l.counts[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, l.counts[k]))
	}
	return strings.Join(parts, ", ")
}

// outage is one way of failing a store.
type outage struct {
	// down fails the store; up brings it back (nil: it comes back by itself,
	// e.g. terminated connections).
	down, up func(t *testing.T)
	// away: between down and up the store cannot be used at all, so
	// refreshes must answer 503 unavailable and /healthz must say so.
	away bool
	// refuses: between down and up refreshes must answer 503 unavailable
	// (implied by away; a full disk refuses writes but still answers reads).
	refuses bool
	// mayLose is what docs/deploy.md allows for a client's last token after
	// this outage besides a refresh: "" (nothing may be lost) or the error
	// code it is answered with ("invalid_token" for a lost rotation).
	mayLose string
}

// result is what an outage cost.
type result struct {
	clients  int
	lost     int           // clients whose last token no longer refreshes
	recovery time.Duration // from up until every client refreshed again
	answers  string
	ahead    int // tokens the server logged as ahead of their session (lost rotations)
}

// underLoad runs refresh load from clients sessions on srv, applies o, and
// checks: only 200 and 503 unavailable during the run (or, where o allows a
// loss, the answer deploy.md gives for it); 503 unavailable and an unhealthy
// /healthz while the store is away; every client refreshing again without a
// restart of latchkey once it is back; and then every client's last token
// still refreshing, or answered as o allows. It returns what was lost.
func underLoad(t *testing.T, srv *node, clients int, o outage) result {
	t.Helper()
	l := startLoad(t, clients, srv.url)
	warm := time.Now()
	if !waitFor(10*time.Second, func() bool { return l.allRefreshedSince(warm) }) {
		t.Fatalf("the load did not get going: %s", l.summary())
	}
	time.Sleep(300 * time.Millisecond)
	before := l.unavailableCount()
	o.down(t)
	if o.away || o.refuses {
		if !waitFor(10*time.Second, func() bool { return l.unavailableCount() > before }) {
			t.Fatalf("no refresh answered 503 unavailable while the store was failed: %s", l.summary())
		}
	}
	if o.away {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		h := healthz(ctx, srv.url)
		cancel()
		if h.status != 503 || h.body["store"] != "unreachable" {
			t.Fatalf("/healthz while the store is away = %v %v, want 503 with store unreachable", h, h.body)
		}
	}
	if o.away || o.refuses {
		time.Sleep(500 * time.Millisecond)
	}
	if o.up != nil {
		o.up(t)
	}
	back := time.Now()
	if !waitFor(30*time.Second, func() bool { return l.allRefreshedSince(back) }) {
		t.Fatalf("clients did not refresh again within 30 s of the store's return (no restart of latchkey): %s\nthe server's last lines:\n%s", l.summary(), srv.logs.tail(20)+"\n"+srv.logs.matching("request failed", 10))
	}
	r := result{clients: clients, recovery: time.Since(back)}
	if h := healthz(t.Context(), srv.url); h.status != 200 {
		t.Fatalf("/healthz after the store came back = %v", h)
	}
	time.Sleep(300 * time.Millisecond)
	l.stop()
	r.answers = l.summary()

	// Every client's last token: it refreshes, or is answered as the outage allows.
	for i, c := range l.clients {
		if c.ended.status != 0 || c.ended.code != "" {
			if o.mayLose == "" || c.ended.code != o.mayLose {
				t.Errorf("client %d was answered %v during the load (%s)", i, c.ended, r.answers)
			}
		}
		a := call(t.Context(), "POST", c.node+"/refresh", c.token, "")
		switch {
		case a.status == 200:
		case o.mayLose != "" && a.code == o.mayLose:
			r.lost++
		default:
			t.Errorf("client %d's last refresh token, after the outage, = %v", i, a)
		}
	}
	r.ahead = srv.logs.count("refresh token ahead of its session")
	if n := srv.logs.count("refresh token reuse"); n > 0 {
		t.Errorf("the outage made latchkey see %d refresh token reuses: sessions were revoked", n)
	}
	t.Logf("%d clients, %d lost their session; every other refreshed again %v after the store came back; answers during the load: %s",
		r.clients, r.lost, r.recovery.Round(time.Millisecond), r.answers)
	return r
}
