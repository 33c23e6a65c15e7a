package store

import (
	"errors"
	"strings"
	"testing"
)

func TestHolds(t *testing.T) {
	st := NewMem()
	st.Put(t.Context(), "k", strings.NewReader("abc"), 3)
	for data, want := range map[string]bool{"abc": true, "abd": false, "ab": false, "abcd": false} {
		if got, err := Holds(t.Context(), st, "k", []byte(data)); err != nil || got != want {
			t.Errorf("Holds(%q) = %v, %v", data, got, err)
		}
	}
	if _, err := Holds(t.Context(), st, "missing", []byte("x")); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
