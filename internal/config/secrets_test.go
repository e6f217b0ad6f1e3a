package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A secret is masked where it is a whole segment, and a long one inside a
// segment too; a short one is not masked inside other segments, which
// would tell readers what it is.
func TestSecretsMaskWholeSegments(t *testing.T) {
	t.Parallel()
	ss := Secrets{"hooks", "s3cr3t-0123456789"}
	for s, want := range map[string]string{
		"/v1/ingest/service-hooks/outbound-call":     "/v1/ingest/service-hooks/outbound-call",
		"/v1/ingest/hooks":                           "/v1/ingest/[credential]",
		"/v1/ingest/service-hooks/s3cr3t-0123456789": "/v1/ingest/service-hooks/[credential]",
		"/v1/ingest/x-s3cr3t-0123456789":             "/v1/ingest/x-[credential]",
		"hooks":                                      "[credential]",
		"service-hooks":                              "service-hooks",
		"":                                           "",
	} {
		require.Equal(t, want, ss.Mask(s), s)
		if !strings.Contains(s, "/") {
			require.Equal(t, want != s, ss.Names(s), s)
		}
	}
}
