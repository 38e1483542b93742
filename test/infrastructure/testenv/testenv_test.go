package testenv

import "testing"

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		ci, real string
		want     bool
	}{
		{"", "", false},
		{"true", "", true},
		{"", "1", true},
		{"false", "0", false},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("KINDLING_REQUIRE_REAL", tc.real)
		if got := Required(); got != tc.want {
			t.Errorf("CI=%q KINDLING_REQUIRE_REAL=%q: Required() = %v, want %v", tc.ci, tc.real, got, tc.want)
		}
	}
}
