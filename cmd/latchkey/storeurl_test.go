package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// storePrefixes are what a --store value may start with in the fuzz target
// below: the accepted forms, near misses and nothing at all.
var storePrefixes = []string{"sqlite:", "postgres://", "postgresql://", "redis://", "redis-cluster://", "rediss://", "mysql://", "Postgres://", ""}

// storeDSN puts a --store value together: a prefix, credentials (escaped as a
// URL's user part must be) or none, a host part and the rest; with inQuery the
// password goes in a password= query parameter instead, as PostgreSQL allows.
func storeDSN(prefix int, user, pass, host, rest string, inQuery bool) string {
	s := storePrefixes[prefix]
	if !inQuery && (user != "" || pass != "") {
		s += url.UserPassword(user, pass).String() + "@"
	}
	s += host + rest
	if inQuery {
		sep := "?"
		if strings.Contains(s, "?") {
			sep = "&"
		}
		s += sep + "password=" + url.QueryEscape(pass)
	}
	return s
}

// FuzzStoreURL checks how a --store value is read: a value is accepted as
// exactly the backend its prefix names, or refused with a usage error that
// lists the accepted forms; and neither the refusal, nor the redacted form
// used in logs and errors, nor a Redis backend's refusal ever depends on the
// password written in the value.
func FuzzStoreURL(f *testing.F) {
	f.Add(0, "", "", "latchkey.db", "", false)
	f.Add(0, "", "", "", "", false)
	f.Add(1, "postgres", "s3cret", "127.0.0.1:5432", "/test?sslmode=disable", false)
	f.Add(2, "app", "pw", "db.internal", "/app", true)
	f.Add(1, "", "p", "h", "/db?sslmode=disable&Password=x", false)
	f.Add(3, "", "s3cret", "127.0.0.1:6379", "/0?prefix=app1:", false)
	f.Add(3, "u", "p", "h:1", "/notanumber", false)
	f.Add(4, "", "pw", "127.0.0.1:7000,127.0.0.1:7001", "", false)
	f.Add(4, "user", "p@ss", "", "", false)
	f.Add(5, "u", "p", "h:1", "", false)
	f.Add(6, "root", "hunter22", "h:3306", "/db", false)
	f.Fuzz(func(t *testing.T, prefix int, user, pass, host, rest string, inQuery bool) {
		prefix = int(uint(prefix) % uint(len(storePrefixes)))
		if pass == "" || (storePrefixes[prefix] == "sqlite:" && !inQuery) {
			// Without a password there is nothing to hide; a sqlite: value
			// has no user part.
			user, pass = "", ""
		}
		dsn := storeDSN(prefix, user, pass, host, rest, inQuery)
		other := storeDSN(prefix, user, pass+"-other", host, rest, inQuery)
		if inQuery && strings.Contains(dsn, "#") {
			// A password= in a fragment is not a parameter: nothing reads
			// it, so nothing has to hide it.
			pass = ""
		}

		scheme, err := storeScheme(dsn)
		want := ""
		switch {
		case strings.HasPrefix(dsn, "sqlite:"):
			if dsn != "sqlite:" {
				want = "sqlite"
			}
		case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
			want = "postgres"
		case strings.HasPrefix(dsn, "redis://"):
			want = "redis"
		case strings.HasPrefix(dsn, "redis-cluster://"):
			want = "redis-cluster"
		}
		if want == "" {
			var ue usageError
			forms := "want sqlite:PATH"
			if dsn == "sqlite:" {
				forms = "needs a file path"
			}
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), forms) {
				t.Fatalf("storeScheme(%q) = %q, %v: want a usage error naming the accepted forms", dsn, scheme, err)
			}
			_, err2 := storeScheme(other)
			if pass != "" && (err2 == nil || err2.Error() != err.Error()) {
				t.Fatalf("storeScheme(%q) = %v but storeScheme(%q) = %v: the refusal shows the password", dsn, err, other, err2)
			}
			return
		}
		if err != nil || scheme != want {
			t.Fatalf("storeScheme(%q) = %q, %v, want %q", dsn, scheme, err, want)
		}
		if _, ok := storeOpeners[scheme]; !ok {
			t.Fatalf("storeScheme(%q) = %q, which has no opener", dsn, scheme)
		}
		// The password must not change what logs and errors show.
		if pass != "" {
			if r, r2 := redact(dsn), redact(other); r != r2 {
				t.Fatalf("redact(%q) = %q but redact(%q) = %q: the password shows", dsn, r, other, r2)
			}
		}
		if scheme == "redis" || scheme == "redis-cluster" {
			// The parse comes before any connection: a cancelled context
			// keeps the fuzzer off the network.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			st, err := openStore(ctx, scheme, dsn, 0)
			if err == nil {
				st.Close()
				t.Fatalf("openStore(%q) with a cancelled context succeeded", dsn)
			}
			if want := "opening store " + redact(dsn) + ": redis: "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("openStore(%q) = %q, want it to start with %q", dsn, err, want)
			}
			if pass != "" {
				_, err2 := openStore(ctx, scheme, other, 0)
				if err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("openStore(%q) = %v but openStore(%q) = %v: the password shows", dsn, err, other, err2)
				}
			}
		}
	})
}
