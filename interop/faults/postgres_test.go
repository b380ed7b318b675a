package faults_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a private PostgreSQL cluster, run from Debian's binaries as the
// postgres user (PostgreSQL refuses to run as root) in a temporary directory.
type pgServer struct {
	bin    string // directory of initdb, pg_ctl, postgres
	dir    string // owned by postgres: data/, the log and the socket
	port   int
	listen string // listen_addresses
}

// pgBinDir is the newest /usr/lib/postgresql/VERSION/bin with initdb.
func pgBinDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		t.Fatalf("%s=1 but PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin/initdb; .ci/run installs the postgresql package)", faultsEnv)
	}
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[j]))))
		return vi < vj
	})
	return filepath.Dir(dirs[len(dirs)-1])
}

// startPostgres initialises and starts a private PostgreSQL listening on
// listen (comma-separated addresses) and a free port; it is stopped and
// removed when the test ends.
func startPostgres(t *testing.T, listen string) *pgServer {
	t.Helper()
	requireFaults(t, "runuser")
	p := &pgServer{bin: pgBinDir(t), port: freePort(t), listen: listen}
	dir := tempDir(t, "pg", func(old string) {
		(&pgServer{bin: p.bin, dir: old}).ctl("stop", "-m", "immediate", "-w", "-t", "10")
	})
	p.dir = dir
	t.Cleanup(func() {
		p.ctl("stop", "-m", "immediate", "-w", "-t", "10")
		os.RemoveAll(dir)
	})
	if out, err := exec.Command("chown", "postgres:", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", dir, err, out)
	}
	if out, err := p.asPostgres(filepath.Join(p.bin, "initdb"), "-D", p.data(), "-U", "postgres", "-A", "trust", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start(t)
	return p
}

func (p *pgServer) data() string { return filepath.Join(p.dir, "data") }

func (p *pgServer) asPostgres(argv ...string) ([]byte, error) {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, argv...)...).CombinedOutput()
}

func (p *pgServer) ctl(args ...string) ([]byte, error) {
	return p.asPostgres(append([]string{filepath.Join(p.bin, "pg_ctl"), "-D", p.data()}, args...)...)
}

// start starts the server and waits until it accepts connections.
func (p *pgServer) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=%s -c unix_socket_directories=%s -c max_connections=100 -c fsync=on",
		p.port, p.listen, p.dir)
	if out, err := p.ctl("start", "-w", "-t", "30", "-l", filepath.Join(p.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop shuts the server down in mode (fast or immediate).
func (p *pgServer) stop(t *testing.T, mode string) {
	t.Helper()
	if out, err := p.ctl("stop", "-m", mode, "-w", "-t", "30"); err != nil {
		t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

// url is the connection URL of database postgres on host.
func (p *pgServer) url(host string) string {
	return fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable", host, p.port)
}

// terminate ends every backend but its own, as an administrator would with
// pg_terminate_backend, and returns how many it ended.
func (p *pgServer) terminate(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.url("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	err = c.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') AS ended`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// PostgreSQL going away under refresh load, three ways: a fast shutdown
// (sessions end cleanly), an immediate shutdown (a crash: recovery replays
// the WAL at start), and every connection terminated with the server up.
// Nothing committed may be lost: every client's last token refreshes.
func TestPostgresFailures(t *testing.T) {
	requireFaults(t)
	pg := startPostgres(t, "127.0.0.1")
	srv := startNode(t, nil, "127.0.0.1:0", newSecret(), "--store", pg.url("127.0.0.1"))
	for _, mode := range []string{"fast", "immediate"} {
		t.Run("restart-"+mode, func(t *testing.T) {
			r := underLoad(t, srv, 16, outage{
				down: func(t *testing.T) { pg.stop(t, mode) },
				up:   func(t *testing.T) { pg.start(t) },
				away: true,
			})
			if r.lost > 0 {
				t.Errorf("%d sessions lost to a %s restart of PostgreSQL", r.lost, mode)
			}
		})
	}
	t.Run("terminate-backends", func(t *testing.T) {
		ended := 0
		r := underLoad(t, srv, 16, outage{
			down: func(t *testing.T) {
				// Several rounds, so that some land on refreshes in flight.
				for range 5 {
					ended += pg.terminate(t)
					time.Sleep(150 * time.Millisecond)
				}
			},
		})
		if ended == 0 {
			t.Fatal("pg_terminate_backend ended no connection of latchkey's")
		}
		t.Logf("%d backends terminated in 5 rounds", ended)
		if r.lost > 0 {
			t.Errorf("%d sessions lost to terminated connections", r.lost)
		}
	})
}
