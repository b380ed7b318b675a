package faults_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisServer is a private redis-server process.
type redisServer struct {
	port int
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis runs redis-server on a free port with its files in a temporary
// directory and extra settings; it is killed when the test ends.
func startRedis(t *testing.T, extra ...string) *redisServer {
	t.Helper()
	requireFaults(t, "redis-server", "redis-cli")
	r := &redisServer{port: freePort(t)}
	r.args = append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", ""}, extra...)
	t.Cleanup(func() { r.kill() })
	r.start(t)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs the process and waits until it answers PING (after loading its
// append-only file, if any).
func (r *redisServer) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	r.cmd.SysProcAttr = dieWithTest()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	c := goredis.NewClient(&goredis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	if !waitFor(20*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil }) {
		t.Fatalf("redis-server on %s did not answer within 20 s", r.addr())
	}
}

// kill ends the process with SIGKILL: what it had not written is lost.
func (r *redisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// shutdown stops it as an operator's restart does (SHUTDOWN: the append-only
// file is flushed).
func (r *redisServer) shutdown(t *testing.T) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	c.Shutdown(context.Background()) // answers with the closed connection
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("redis-server did not shut down within 20 s")
	}
	r.cmd = nil
}

// Redis going away under refresh load, with the persistence docs/deploy.md
// recommends (appendonly yes, appendfsync everysec). A restart by SHUTDOWN
// flushes everything: nothing may be lost. A SIGKILL loses up to a second of
// writes: the rotations in it are lost, and their clients' tokens answered
// invalid_token, as docs/deploy.md says of a failover.
func TestRedisFailures(t *testing.T) {
	requireFaults(t)
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "everysec")
	srv := startNode(t, nil, "127.0.0.1:0", newSecret(), "--store", "redis://"+rs.addr()+"/0")
	t.Run("restart", func(t *testing.T) {
		r := underLoad(t, srv, 16, outage{
			down: func(t *testing.T) { rs.shutdown(t) },
			up:   func(t *testing.T) { rs.start(t) },
			away: true,
		})
		if r.lost > 0 {
			t.Errorf("%d sessions lost to a restart of Redis", r.lost)
		}
	})
	t.Run("kill", func(t *testing.T) {
		r := underLoad(t, srv, 16, outage{
			down:    func(t *testing.T) { rs.kill() },
			up:      func(t *testing.T) { rs.start(t) },
			away:    true,
			mayLose: "invalid_token",
		})
		checkLostAreAhead(t, srv, r)
	})
}

// checkLostAreAhead checks that every lost session was refused because its
// token was ahead of the store (a lost rotation), which the server logs.
func checkLostAreAhead(t *testing.T, srv *node, r result) {
	t.Helper()
	if r.lost > 0 && r.ahead < r.lost {
		t.Errorf("%d sessions answered invalid_token but the server logged only %d tokens ahead of their session", r.lost, r.ahead)
	}
	t.Logf("lost rotations: %d of %d sessions", r.lost, r.clients)
}

// redisCluster is a private Redis Cluster of three masters, each with one
// replica.
type redisCluster struct {
	nodes []*redisServer
}

func startCluster(t *testing.T) *redisCluster {
	t.Helper()
	rc := &redisCluster{}
	var addrs []string
	for range 6 {
		n := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--appendonly", "no")
		rc.nodes = append(rc.nodes, n)
		addrs = append(addrs, n.addr())
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rc.settle(t)
	return rc
}

// settle waits until the cluster has three masters with a replica each,
// all saying cluster_state:ok, for a second on end: a node that has just
// rejoined can still be agreeing with the others on who serves what.
func (rc *redisCluster) settle(t *testing.T) {
	t.Helper()
	var since time.Time
	ok := waitFor(30*time.Second, func() bool {
		if !rc.healthy(3, 3) {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) > time.Second
	})
	if !ok {
		t.Fatalf("the private cluster did not settle with three masters and three replicas:\n%s", rc.info())
	}
}

// role is a node's role as it says itself ("master", "slave"), "" if down.
func role(n *redisServer) (string, string) {
	if n.cmd == nil {
		return "", ""
	}
	c := goredis.NewClient(&goredis.Options{Addr: n.addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx := context.Background()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", ""
	}
	state, _ := c.ClusterInfo(ctx).Result()
	r := ""
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "role:"); ok {
			r = v
		}
		if strings.HasPrefix(strings.TrimSpace(l), "master_link_status:down") {
			r += "(link down)"
		}
	}
	ok := ""
	if strings.Contains(state, "cluster_state:ok") {
		ok = "ok"
	}
	return r, ok
}

// healthy reports whether the live nodes count masters masters and replicas
// replicas with their links up, all in cluster state ok.
func (rc *redisCluster) healthy(masters, replicas int) bool {
	m, s := 0, 0
	for _, n := range rc.nodes {
		r, ok := role(n)
		if r == "" {
			continue
		}
		if ok != "ok" {
			return false
		}
		switch r {
		case "master":
			m++
		case "slave":
			s++
		}
	}
	return m == masters && s == replicas
}

func (rc *redisCluster) info() string {
	var b strings.Builder
	for _, n := range rc.nodes {
		r, ok := role(n)
		fmt.Fprintf(&b, "%s %s %s\n", n.addr(), r, ok)
	}
	return b.String()
}

func (rc *redisCluster) url() string {
	var addrs []string
	for _, n := range rc.nodes {
		addrs = append(addrs, n.addr())
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

// A Redis Cluster master killed under refresh load: its replica is promoted
// after the node timeout (2 s here) and latchkey follows it without a
// restart. Replication is asynchronous, so rotations the master acknowledged
// but had not passed on are lost; their clients' tokens are answered
// invalid_token, as docs/deploy.md says. The second kill makes that loss
// certain: the replica is paused (SIGSTOP) and its link dropped for half a
// second under load before its master dies, so it is promoted without the
// last rotations.
func TestRedisClusterFailover(t *testing.T) {
	requireFaults(t)
	rc := startCluster(t)
	srv := startNode(t, nil, "127.0.0.1:0", newSecret(), "--store", rc.url())
	failover := func(lag time.Duration) outage {
		master, replica := rc.pair(t)
		return outage{
			down: func(t *testing.T) {
				if lag > 0 {
					// Paused, the replica cannot reconnect once the master
					// drops its link; what the master writes then is its alone.
					replica.cmd.Process.Signal(syscall.SIGSTOP)
					c := goredis.NewClient(&goredis.Options{Addr: master.addr(), MaxRetries: -1})
					err := c.Do(context.Background(), "CLIENT", "KILL", "TYPE", "replica").Err()
					c.Close()
					if err != nil {
						t.Fatalf("CLIENT KILL TYPE replica: %v", err)
					}
					time.Sleep(lag)
				}
				master.kill()
				if lag > 0 {
					replica.cmd.Process.Signal(syscall.SIGCONT)
				}
			},
			up: func(t *testing.T) {
				start := time.Now()
				if !waitFor(20*time.Second, func() bool { r, _ := role(replica); return r == "master" && rc.healthy(3, 2) }) {
					t.Fatalf("the replica did not take over from the killed master within 20 s:\n%s", rc.info())
				}
				t.Logf("the replica took over %v after the master was killed", time.Since(start).Round(time.Millisecond))
			},
			// Only the sessions on the killed master's slots are refused;
			// the others keep refreshing.
			refuses: true,
			mayLose: "invalid_token",
		}
	}
	t.Run("kill-master", func(t *testing.T) {
		r := underLoad(t, srv, 16, failover(0))
		checkLostAreAhead(t, srv, r)
		// The killed node comes back as a replica of the new master.
		rc.restartDead(t)
	})
	t.Run("kill-master-lagging-replica", func(t *testing.T) {
		ahead := srv.logs.count("refresh token ahead of its session")
		r := underLoad(t, srv, 16, failover(500*time.Millisecond))
		r.ahead -= ahead
		checkLostAreAhead(t, srv, r)
		if r.lost == 0 {
			t.Errorf("the replica was promoted half a second behind its master, yet no rotation was lost: the test did not do what it says (%s)", r.answers)
		}
	})
}

// pair is a live master and its replica.
func (rc *redisCluster) pair(t *testing.T) (master, replica *redisServer) {
	t.Helper()
	for _, n := range rc.nodes {
		if n.cmd == nil {
			continue
		}
		c := goredis.NewClient(&goredis.Options{Addr: n.addr(), MaxRetries: -1})
		info, err := c.Info(context.Background(), "replication").Result()
		c.Close()
		if err != nil || !strings.Contains(info, "role:slave") {
			continue
		}
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "master_port:"); ok {
				for _, m := range rc.nodes {
					if strconv.Itoa(m.port) == v && m.cmd != nil {
						return m, n
					}
				}
			}
		}
	}
	t.Fatalf("no live master with a replica:\n%s", rc.info())
	return nil, nil
}

// restartDead starts the killed nodes again and waits until they have
// rejoined as replicas.
func (rc *redisCluster) restartDead(t *testing.T) {
	t.Helper()
	for _, n := range rc.nodes {
		if n.cmd == nil {
			n.start(t)
		}
	}
	rc.settle(t)
}
