package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAcceptHeaderChoosesTheFormat(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"application/x-ndjson":                             true,
		"application/json, application/x-ndjson":           true,
		"Application/X-NDJSON; q=0.5":                      true,
		"application/json, application/x-ndjson;q=0":       false,
		"application/json;q=1, application/x-ndjson;q=0.5": false,
		"application/json":                                 false,
		"*/*":                                              false,
		"":                                                 false,
		"application/x-ndjsonx":                            false,
		"application/x-ndjson;q=0.1, */*":                  false,
		"application/x-ndjson;q=0.1, application/*;q=0.5": false,
		"application/x-ndjson, */*;q=0.1":                 true,
	} {
		require.Equal(t, want, prefers(accept, "application/x-ndjson"), accept)
	}
}
