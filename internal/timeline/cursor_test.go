package timeline

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// A feed cursor carries a fingerprint of the filters as they were given, not
// of the patterns they are matched by: a cursor issued before the types
// filter also matched the other case is still accepted for the same filter.
func TestFeedCursorFingerprintsTheTypesAsGiven(t *testing.T) {
	t.Parallel()
	idx := int64(41)
	// The fingerprint of ?types=ORDER_*,before-* as issued when each type
	// was one LIKE pattern.
	issued := cursor{Index: &idx, Filters: fingerprint("feed", "", `ORDER\_%,before-%`, "", "")}.encode()
	q := url.Values{"types": {"ORDER_*, before-*"}, "cursor": {*issued}}
	c, fq, _, err := feedQuery(q)
	if err != nil {
		t.Fatalf("a cursor for the same filter was refused: %v", err)
	}
	if fq.AfterIndex != idx {
		t.Fatalf("resumed after %d, want %d", fq.AfterIndex, idx)
	}
	if len(c.types) != 2 {
		t.Fatalf("patterns %q, want one for each type (matched whatever its case)", c.types)
	}
	q.Set("types", "ORDER_*")
	if _, _, _, err := feedQuery(q); err == nil {
		t.Fatal("a cursor for other filters was accepted")
	}
}

// Types given as the parameter repeated are all matched, as when they are
// given comma-separated, and a cursor issued for one spelling serves the
// other.
func TestRepeatedTypesAreAllMatched(t *testing.T) {
	t.Parallel()
	repeated, err := parseCommon(url.Values{"types": {"ORDER_CREATED", "payment_added"}})
	require.NoError(t, err)
	listed, err := parseCommon(url.Values{"types": {"ORDER_CREATED,payment_added"}})
	require.NoError(t, err)
	require.Equal(t, listed.types, repeated.types)
	require.Equal(t, listed.typesKey, repeated.typesKey)
	require.Contains(t, repeated.types, `payment\_added`)
	require.Contains(t, repeated.types, `ORDER\_CREATED`)

	_, err = parseCommon(url.Values{"types": {"", ""}})
	require.NoError(t, err, "empty values filter nothing, as ?types= does")
	_, err = parseCommon(url.Values{"types": {",", ""}})
	require.Error(t, err)
}
