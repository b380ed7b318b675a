package compactjws

import "testing"

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"eyJh.eyJz.c2ln", true},
		{"a-_.B09.z", true},
		{"", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{"a.b.", true},
		{"..", true},
		{"a.b.c\t", false},
		{"a.b.c\n", false},
		{"a.b.c\r", false},
		{"a. b.c", false},
		{"a.b.c=", false},
		{"a.b+/.c", false},
		{"a.b.c\x00", false},
		{"a.b.\u00e9", false},
		{`{"payload":"x"}`, false},
	} {
		if got := Valid(tc.in); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
