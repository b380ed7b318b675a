package faults_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Names of this package's namespaces and links, so that leftovers of a run
// that crashed can be found and removed: namespace lkf-nodeK; per node a
// client link lkfcK (10.231.K.1, host side) — lkfcKn (10.231.K.2, in the
// namespace) and a store link lkfsK (10.232.K.1) — lkfsKn (10.232.K.2).
const (
	nsPrefix = "lkf-node"
	nodes    = 3
)

func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// removeNet deletes this package's namespaces and links, whatever is left.
func removeNet() {
	for k := 1; k <= nodes; k++ {
		exec.Command("ip", "netns", "del", fmt.Sprintf("%s%d", nsPrefix, k)).Run()
		exec.Command("ip", "link", "del", fmt.Sprintf("lkfc%d", k)).Run()
		exec.Command("ip", "link", "del", fmt.Sprintf("lkfs%d", k)).Run()
	}
}

// netNode is a latchkey node in its own network namespace, reached by the
// test over its client link and reaching the store over its store link.
type netNode struct {
	k     int
	ns    string
	relay *relay
	netem bool // the kernel has sch_netem: impair with tc, else relay + nft
	*node
}

func (n *netNode) storeLink() string { return fmt.Sprintf("lkfs%dn", n.k) }

// buildNet makes the namespaces and links; they are removed when the test ends.
func buildNet(t *testing.T) []*netNode {
	t.Helper()
	removeNet()
	t.Cleanup(removeNet)
	var out []*netNode
	for k := 1; k <= nodes; k++ {
		ns := fmt.Sprintf("%s%d", nsPrefix, k)
		if b, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("cannot make a network namespace here (%v: %s): skipping the network fault tests", err, b)
		}
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		for _, l := range []struct{ name, net string }{{"lkfc", "10.231"}, {"lkfs", "10.232"}} {
			host, peer := fmt.Sprintf("%s%d", l.name, k), fmt.Sprintf("%s%dn", l.name, k)
			run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
			run(t, "ip", "addr", "add", fmt.Sprintf("%s.%d.1/24", l.net, k), "dev", host)
			run(t, "ip", "link", "set", host, "up")
			run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("%s.%d.2/24", l.net, k), "dev", peer)
			run(t, "ip", "-n", ns, "link", "set", peer, "up")
		}
		out = append(out, &netNode{k: k, ns: ns})
	}
	// tc netem where the kernel has it; otherwise its two effects are made
	// by other means (see impair).
	netem := exec.Command("tc", "qdisc", "add", "dev", "lkfs1", "root", "netem", "delay", "0ms").Run() == nil
	if netem {
		exec.Command("tc", "qdisc", "del", "dev", "lkfs1", "root").Run()
	} else {
		t.Log("this kernel has no sch_netem (tc netem): latency is added by a delaying TCP relay in the store path, loss by nftables rules dropping packets at random")
	}
	for _, n := range out {
		n.netem = netem
	}
	return out
}

// impair adds delay to the node's way to the store and drops loss percent
// of the packets on its store link in each direction; zero values remove it.
func (n *netNode) impair(t *testing.T, delay time.Duration, loss int) {
	t.Helper()
	if n.netem {
		args := []string{"-n", n.ns, "qdisc", "replace", "dev", n.storeLink(), "root", "netem", "delay", fmt.Sprintf("%dms", delay.Milliseconds())}
		if loss > 0 {
			args = append(args, "loss", fmt.Sprintf("%d%%", loss))
		}
		run(t, append([]string{"tc"}, args...)...)
		run(t, "tc", "qdisc", "replace", "dev", fmt.Sprintf("lkfs%d", n.k), "root", "netem", "loss", fmt.Sprintf("%d%%", loss))
		return
	}
	n.relay.delay.Store(int64(delay))
	exec.Command("ip", "netns", "exec", n.ns, "nft", "delete", "table", "inet", "lkfaults").Run()
	if loss > 0 {
		rules := fmt.Sprintf(`table inet lkfaults {
	chain out { type filter hook output priority 0; oifname "%[1]s" numgen random mod 100 < %[2]d drop; }
	chain in { type filter hook input priority 0; iifname "%[1]s" numgen random mod 100 < %[2]d drop; }
}`, n.storeLink(), loss)
		cmd := exec.Command("ip", "netns", "exec", n.ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
	}
}

// cut takes the node's store link down (or up again).
func (n *netNode) cut(t *testing.T, off bool) {
	t.Helper()
	state := "up"
	if off {
		state = "down"
	}
	run(t, "ip", "-n", n.ns, "link", "set", n.storeLink(), state)
}

// relay forwards TCP connections from a node to PostgreSQL, holding what the
// node sends for delay first: the latency tc netem would add.
type relay struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, listen, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	r.wg.Go(r.accept)
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, u)
		r.mu.Unlock()
		r.wg.Go(func() { r.pipe(u, c, true); c.Close(); u.Close() })
		r.wg.Go(func() { r.pipe(c, u, false); c.Close(); u.Close() })
	}
}

// pipe copies src to dst, each chunk held until delay after it was read.
func (r *relay) pipe(dst, src net.Conn, delayed bool) {
	if !delayed {
		io.Copy(dst, src)
		return
	}
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at.Add(time.Duration(r.delay.Load()))))
		if _, err := dst.Write(c.b); err != nil {
			for range ch {
			}
			return
		}
	}
}

// cluster starts a PostgreSQL and three nodes in namespaces in front of it.
func netCluster(t *testing.T) []*netNode {
	t.Helper()
	requireFaults(t, "ip", "tc", "nft")
	// The namespaces and links have fixed names: one run at a time holds
	// them (the kernel releases the lock of a run that dies).
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "lkfaults-net.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	nn := buildNet(t)
	pg := startPostgres(t, "127.0.0.1")
	secret := newSecret()
	for _, n := range nn {
		storeAddr := fmt.Sprintf("10.232.%d.1:%d", n.k, freePort(t))
		n.relay = startRelay(t, storeAddr, fmt.Sprintf("127.0.0.1:%d", pg.port))
		store := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", storeAddr)
		n.node = startNode(t, []string{"ip", "netns", "exec", n.ns}, fmt.Sprintf("10.231.%d.2:8080", n.k), secret,
			"--store", store, "--revocation-delay", "1s", "--reuse-grace", "30s")
	}
	return nn
}

// race sends 30 concurrent refreshes of one token spread over the nodes and
// checks that every answer is 200 with one and the same successor, and that
// the successor refreshes once more (one generation advance, no fork).
func race(t *testing.T, on []*netNode) {
	t.Helper()
	_, rt := login(t, on[0].url)
	answers := make([]answer, 30)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = call(t.Context(), "POST", on[i%len(on)].url+"/refresh", rt, "") })
	}
	wg.Wait()
	took := time.Since(start)
	var next string
	for i, a := range answers {
		if a.status != 200 {
			t.Fatalf("refresh %d of the race, on node %d = %v", i, on[i%len(on)].k, a)
		}
		tok := a.body["refresh_token"].(string)
		if next == "" {
			next = tok
		}
		if tok != next {
			t.Fatalf("the race forked: refresh %d on node %d got another successor", i, on[i%len(on)].k)
		}
	}
	if a := call(t.Context(), "POST", on[len(on)-1].url+"/refresh", next, ""); a.status != 200 {
		t.Fatalf("the race's one successor does not refresh: %v", a)
	}
	t.Logf("30 concurrent refreshes over %d nodes: one successor, in %v", len(on), took.Round(time.Millisecond))
}

// logoutReaches logs a session in and out on from and checks that every node
// of to refuses its access token as revoked within the revocation delay (1 s)
// plus a second for the round trips and scheduling of a loaded machine.
func logoutReaches(t *testing.T, from *netNode, to []*netNode) {
	t.Helper()
	access, _ := login(t, from.url)
	for _, n := range to {
		if a := call(t.Context(), "GET", n.url+"/protected", access, ""); a.status != 200 {
			t.Fatalf("node %d refuses a fresh access token: %v", n.k, a)
		}
	}
	if a := call(t.Context(), "POST", from.url+"/logout", access, ""); a.status != 204 {
		t.Fatalf("logout on node %d = %v", from.k, a)
	}
	start := time.Now()
	for _, n := range to {
		for {
			a := call(t.Context(), "GET", n.url+"/protected", access, "")
			if a.status == 401 && a.code == "token_revoked" {
				break
			}
			if a.status != 200 {
				t.Fatalf("node %d answers a logged-out token %v", n.k, a)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("node %d still accepts a logged-out token %v after the logout (revocation delay 1 s)", n.k, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("logout on node %d refused on every node after %v", from.k, time.Since(start).Round(time.Millisecond))
}

// Three nodes in network namespaces in front of one PostgreSQL, with the
// network between them and the store made slow, lossy and cut: the
// cross-node race still yields one successor, a logout still reaches every
// node that can see the store within the revocation delay, and a node that
// cannot see the store says so in /healthz.
func TestNetworkFaults(t *testing.T) {
	nn := netCluster(t)
	// Every node's link to the store delayed, or lossy: the race still has
	// one winner, and a logout still reaches every node.
	for _, tc := range []struct {
		name  string
		delay time.Duration
		loss  int
	}{{"latency-200ms", 200 * time.Millisecond, 0}, {"loss-5%", 0, 5}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range nn {
				n.impair(t, tc.delay, tc.loss)
			}
			defer func() {
				for _, n := range nn {
					n.impair(t, 0, 0)
				}
			}()
			race(t, nn)
			logoutReaches(t, nn[0], nn)
		})
	}
	t.Run("node-cut-off-10s", func(t *testing.T) {
		cut, others := nn[2], nn[:2]
		// Sessions in use on the node before it loses the store.
		var held []string
		for range 4 {
			_, rt := login(t, cut.url)
			held = append(held, rt)
		}
		access, _ := login(t, others[0].url)
		cut.cut(t, true)
		start := time.Now()
		defer cut.cut(t, false)
		// Refreshes on the cut node, some on pooled connections whose
		// packets now vanish: each is answered 503 unavailable, promptly —
		// at worst a pooled connection's 5 s TCP_USER_TIMEOUT followed by a
		// new connection's 5 s connect timeout, so within 12 s.
		var wg sync.WaitGroup
		for i, rt := range held {
			wg.Go(func() {
				s := time.Now()
				a := call(t.Context(), "POST", cut.url+"/refresh", rt, "")
				if a.status != 503 || a.code != "unavailable" || time.Since(s) > 12*time.Second {
					t.Errorf("refresh %d on the node cut off from its store = %v after %v, want 503 unavailable within 12 s", i, a, time.Since(s))
				}
			})
		}
		// It says so in /healthz, within its 2-second bound.
		s := time.Now()
		if h := healthz(t.Context(), cut.url); h.status != 503 || h.body["store"] != "unreachable" || time.Since(s) > 3*time.Second {
			t.Errorf("/healthz on the node cut off from its store = %v %v after %v, want 503 store unreachable within 3 s", h, h.body, time.Since(s))
		}
		wg.Wait()
		t.Logf("the cut node answered its refreshes 503 unavailable within %v and /healthz 503 within 3 s", time.Since(start).Round(time.Millisecond))
		// The nodes that see the store go on: one successor, logouts reach each other.
		race(t, others)
		logoutReaches(t, others[0], others)
		if a := call(t.Context(), "POST", others[0].url+"/logout", access, ""); a.status != 204 {
			t.Fatalf("logout on node 1 during the cut = %v", a)
		}
		time.Sleep(time.Until(start.Add(10 * time.Second)))
		cut.cut(t, false)
		back := time.Now()
		// Back on the network, it refuses what was revoked while it was cut
		// off within the revocation delay, and serves again without a restart.
		for {
			a := call(t.Context(), "GET", cut.url+"/protected", access, "")
			if a.status == 401 && a.code == "token_revoked" {
				break
			}
			if time.Since(back) > 2*time.Second {
				t.Fatalf("2 s after its store link came back the node still answers %v to a token logged out during the cut", a)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("the logout made during the cut was refused on the node %v after its link came back", time.Since(back).Round(time.Millisecond))
		if !waitFor(10*time.Second, func() bool { return healthz(t.Context(), cut.url).status == 200 }) {
			t.Fatal("/healthz on the node did not recover within 10 s of its store link coming back")
		}
		for i, rt := range held {
			if a := call(t.Context(), "POST", cut.url+"/refresh", rt, ""); a.status != 200 {
				t.Errorf("session %d, refused 503 during the cut, then = %v", i, a)
			}
		}
		race(t, nn)
	})
}
