package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/password"
)

// cheap keeps the tests fast; the format and logic are the same.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h, err := password.Hash("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	if ok, err := password.Verify(h, "correct horse"); !ok || err != nil {
		t.Fatalf("Verify(right) = %v, %v", ok, err)
	}
	if ok, err := password.Verify(h, "correct horsE"); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	h2, _ := password.Hash("correct horse", cheap)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
}

func TestDefaultIsArgon2idProfile(t *testing.T) {
	h, err := password.Hash("x", password.Default())
	if err != nil || !strings.Contains(h, "$m=7168,t=5,p=1$") {
		t.Fatalf("default hash = %q, %v", h, err)
	}
	if password.NeedsRehash(h, password.Default()) || !password.NeedsRehash(h, cheap) {
		t.Fatal("NeedsRehash is wrong")
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	good, _ := password.Hash("pw", cheap)
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=999999,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		good + "$extra", strings.Replace(good, "m=64", "m=064", 1),
	} {
		if ok, err := password.Verify(bad, "pw"); ok || !errors.Is(err, password.ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformedHash", bad, ok, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	good, _ := password.Hash("pw", cheap)
	f.Add(good, "pw")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		ok, err := password.Verify(encoded, pw) // must not panic
		if ok && err != nil {
			t.Fatalf("Verify(%q) = true with error %v", encoded, err)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		password.Hash("correct horse battery staple", password.Default())
	}
}
