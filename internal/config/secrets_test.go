package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A secret is masked where it is a whole segment, and a long one inside a
// segment too; a short one is not masked inside other segments, which
// would tell readers what it is.
func TestSecretsMaskWholeSegments(t *testing.T) {
	t.Parallel()
	ss := Secrets{"hooks", "s3cr3t-0123456789", "k3y/9f2a=1"}
	for s, want := range map[string]string{
		"/v1/ingest/service-hooks/outbound-call":     "/v1/ingest/service-hooks/outbound-call",
		"/v1/ingest/hooks":                           "/v1/ingest/[credential]",
		"/v1/ingest/service-hooks/s3cr3t-0123456789": "/v1/ingest/service-hooks/[credential]",
		"/v1/ingest/x-s3cr3t-0123456789":             "/v1/ingest/x-[credential]",
		"hooks":                                      "[credential]",
		"service-hooks":                              "service-hooks",
		"":                                           "",
		// A short secret written as a query parameter's value into the
		// path, with the "?" forgotten, stands alone after its "=".
		"/v1/ingest/service-hooks/outbound-call&apikey=hooks":   "/v1/ingest/service-hooks/outbound-call&apikey=[credential]",
		"outbound-call&apikey=hooks&x=hooks-2":                  "outbound-call&apikey=[credential]&x=hooks-2",
		"hooks:hooks hooks,hookshooks":                          "[credential]:[credential] [credential],hookshooks",
		"/v1/ingest/service-hooks/outbound-call;key=k3y/9f2a=1": "/v1/ingest/service-hooks/outbound-call;key=[credential]",
	} {
		require.Equal(t, want, ss.Mask(s), s)
		require.Equal(t, want != s, ss.Names(s), s)
	}
	// A short secret that is part of a long one, listed first, does not
	// leave the rest of the long one readable.
	require.Equal(t, "/v1/[credential]", Secrets{"s3cr", "Zm9vYmFy/s3cr/0123456789abcdef"}.Mask("/v1/Zm9vYmFy/s3cr/0123456789abcdef"))
	require.Equal(t, "a/b", Secrets{""}.Mask("a/b"), "an empty secret masks nothing")
	require.False(t, Secrets{""}.Names("a/b"))
}

// Names runs for every delivery with an event in its path: it allocates
// nothing (not parallel: AllocsPerRun counts the whole process).
func TestSecretsNamesDoesNotAllocate(t *testing.T) {
	ss := Secrets{"hooks", "s3cr3t-0123456789", "k3y/9f2a=1"}
	require.Zero(t, testing.AllocsPerRun(100, func() { ss.Names("outbound-call&apikey=hooks-x") }))
}
