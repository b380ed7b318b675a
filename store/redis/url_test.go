package redis

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// urlErrors are the only errors parseURL may give: fixed texts that name the
// expected form and never echo the URL, which may hold a password.
var urlErrors = []string{
	"redis: malformed redis-cluster:// URL (want redis-cluster://host:port,host:port)",
	"redis: malformed redis:// URL (want redis://host:port/DB)",
	"redis: the URL must start with redis://, rediss:// or redis-cluster://",
}

var urlSchemes = []string{"redis", "rediss", "redis-cluster", "http", ""}

// buildURL puts a URL together from its parts, the credentials escaped as a
// URL's user part must be; rest follows the host (a path, a query).
func buildURL(scheme int, user, pass, host, rest string) string {
	s := urlSchemes[scheme%len(urlSchemes)]
	if s != "" {
		s += "://"
	}
	if user != "" || pass != "" {
		s += url.UserPassword(user, pass).String() + "@"
	}
	return s + host + rest
}

// FuzzParseURL checks how a --store Redis URL becomes a client configuration:
// an accepted URL yields exactly the credentials, addresses, database and
// prefix it was written with; a refused one gets one of the fixed errors,
// whatever the password.
func FuzzParseURL(f *testing.F) {
	f.Add(0, "", "", "127.0.0.1:6379", "/0")
	f.Add(0, "default", "s3cret", "localhost:6380", "/3?prefix=app1:")
	f.Add(1, "", "p@ss:word/?#", "[::1]:6379", "/15?prefix=x&dial_timeout=3s")
	f.Add(2, "", "", "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002", "")
	f.Add(2, "u", "p", "a:1,b:2", "?prefix=lk2:")
	f.Add(2, "", "", "", "?prefix=a")
	f.Add(0, "", "", "h:1", "/notanumber")
	f.Add(0, "", "", "h:1", "?prefix=%zz")
	f.Add(0, "", "", "h:1", "?prefix=a&prefix=b")
	f.Add(3, "u", "p", "h:1", "")
	f.Add(4, "", "", "redis://h:1", "?prefix=")
	f.Fuzz(func(t *testing.T, scheme int, user, pass, host, rest string) {
		scheme = int(uint(scheme) % uint(len(urlSchemes)))
		raw := buildURL(scheme, user, pass, host, rest)
		cfg, err := parseURL(raw, Options{})
		// The outcome does not depend on the password: the same URL with
		// another one is accepted or refused alike.
		other := raw
		if user != "" || pass != "" {
			other = buildURL(scheme, user, pass+"-other", host, rest)
		}
		_, err2 := parseURL(other, Options{})
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("parseURL(%q) = %v but parseURL(%q) = %v: the password changes the outcome", raw, err, other, err2)
		}
		if err != nil {
			if !slices.Contains(urlErrors, err.Error()) {
				t.Fatalf("parseURL(%q) = %q, not one of the fixed errors", raw, err)
			}
			return
		}
		if (cfg.single == nil) == (cfg.cluster == nil) {
			t.Fatalf("parseURL(%q) configured single %v and cluster %v: want exactly one", raw, cfg.single != nil, cfg.cluster != nil)
		}
		if cfg.dialTimeout <= 0 {
			t.Fatalf("parseURL(%q): dial timeout %v", raw, cfg.dialTimeout)
		}

		// The prefix is the query's prefix parameter, the default without one.
		wantPrefix := "lk:"
		if _, query, ok := strings.Cut(raw, "?"); ok {
			if q, err := url.ParseQuery(query); err == nil && q.Get("prefix") != "" {
				wantPrefix = q.Get("prefix")
			}
		}
		if cfg.prefix != wantPrefix {
			t.Fatalf("parseURL(%q) prefix = %q, want %q", raw, cfg.prefix, wantPrefix)
		}

		// Where the host part is plainly the host written (nothing in it or
		// after it moves the URL's boundaries), the configuration must hold
		// exactly what was written.
		plain := !strings.ContainsAny(host, "@/?#") && (rest == "" || strings.ContainsRune("/?#", rune(rest[0])))
		var gotUser, gotPass string
		switch {
		case cfg.cluster != nil:
			if !strings.HasPrefix(raw, "redis-cluster://") {
				t.Fatalf("parseURL(%q) gave a cluster", raw)
			}
			gotUser, gotPass = cfg.cluster.Username, cfg.cluster.Password
			// Every address of the host list, in order.
			if plain {
				if want := strings.Split(host, ","); !slices.Equal(cfg.cluster.Addrs, want) {
					t.Fatalf("parseURL(%q) addresses %q, want %q", raw, cfg.cluster.Addrs, want)
				}
			}
		default:
			if !strings.HasPrefix(raw, "redis://") && !strings.HasPrefix(raw, "rediss://") {
				t.Fatalf("parseURL(%q) gave a single server", raw)
			}
			gotUser, gotPass = cfg.single.Username, cfg.single.Password
			if cfg.single.Addr == "" {
				t.Fatalf("parseURL(%q): no address", raw)
			}
			// The database is the path's number (0 without one).
			if path, _, _ := strings.Cut(rest, "?"); plain && !strings.ContainsAny(path, "#%") {
				want := 0
				if p := strings.Trim(path, "/"); p != "" {
					n, err := strconv.Atoi(p)
					if err != nil {
						t.Fatalf("parseURL(%q) accepted the database %q", raw, p)
					}
					want = n
				}
				if cfg.single.DB != want {
					t.Fatalf("parseURL(%q) database %d, want %d", raw, cfg.single.DB, want)
				}
			}
		}
		// The credentials are those written in the URL's user part.
		if plain && (gotUser != user || gotPass != pass) {
			t.Fatalf("parseURL(%q) credentials %q:%q, want %q:%q", raw, gotUser, gotPass, user, pass)
		}
	})
}
