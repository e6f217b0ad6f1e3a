package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A credential is masked where it is a whole segment of a logged path, and
// a long one inside a segment too; a short one is not masked inside other
// segments, which would tell the log's readers what it is.
func TestMaskCredentialsWholeSegments(t *testing.T) {
	s := &server{credentials: []string{"hooks", "s3cr3t-0123456789"}}
	for path, want := range map[string]string{
		"/v1/ingest/service-hooks/outbound-call":     "/v1/ingest/service-hooks/outbound-call",
		"/v1/ingest/hooks":                           "/v1/ingest/[credential]",
		"/v1/ingest/service-hooks/s3cr3t-0123456789": "/v1/ingest/service-hooks/[credential]",
		"/v1/ingest/x-s3cr3t-0123456789":             "/v1/ingest/x-[credential]",
	} {
		require.Equal(t, want, s.maskCredentials(path), path)
	}
}
