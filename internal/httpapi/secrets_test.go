package httpapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
)

// A secret a client writes into its request's URL by mistake is masked in
// everything casetrail keeps or logs of the request, and in the names a
// refusal repeats back: the rejected request's record, its detail, the
// auditor's access log and the server's log.
func TestSecretsWrittenIntoURLsAreMasked(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.logs = &logs })
	hook := []byte(`{"agentID":"a1","targetPhoneNumber":"+14155550100"}`)
	secrets := []string{shNewKey, cuSecret, auditorKey}

	// An event named by the source's own key, with the key in its header
	// too: authenticated, refused and kept.
	event := b.signed(t, config.KindServiceHooks, shNewKey, hook, nil)
	require.Equal(t, 404, event.status, string(event.body))
	require.Equal(t, "urn:casetrail:problem:unknown_event", event.json(t)["type"])
	require.Contains(t, event.json(t)["detail"], "names a configured credential")
	// A case update whose body names no event takes its type from the
	// path: a secret there is refused, not stored as the event's type.
	update := []byte(`{"caseId":"c-1","status":"Open"}`)
	path := "/v1/ingest/case-updates/" + cuSecret
	caseEvent := b.post(t, path, update, map[string]string{"x-cv-signature": hexHMAC(cuSecret, update)})
	require.Equal(t, 404, caseEvent.status, string(caseEvent.body))
	require.Equal(t, 0, b.count(t, "events"))
	// A source named by a secret: refused before authentication, not kept.
	source := b.post(t, "/v1/ingest/"+cuSecret, hook, map[string]string{"x-cv-signature": hexHMAC(cuSecret, hook)})
	require.Equal(t, 404, source.status, string(source.body))
	require.Equal(t, "urn:casetrail:problem:unknown_source", source.json(t)["type"])
	require.Contains(t, source.json(t)["detail"], config.Masked)
	// An auditor's read with a key in its path and query.
	require.Equal(t, 200, b.read(t, auditorKey, "/v1/cases/"+auditorKey+"/timeline?types="+shNewKey).status)

	rejected := b.read(t, adminKey, "/v1/rejected")
	require.Equal(t, 200, rejected.status, string(rejected.body))
	rows := rejected.json(t)["data"].([]any)
	require.Len(t, rows, 2)
	for _, row := range rows {
		require.Equal(t, config.Masked, row.(map[string]any)["eventType"])
	}

	access := b.read(t, adminKey, "/v1/access-log")
	require.Equal(t, 200, access.status, string(access.body))
	entries := access.json(t)["data"].([]any)
	require.NotEmpty(t, entries)
	timeline := entries[0].(map[string]any)
	require.Equal(t, "/v1/cases/"+config.Masked+"/timeline", timeline["path"])
	require.Equal(t, config.Masked, timeline["params"].(map[string]any)["caseId"])
	require.Equal(t, []any{config.Masked}, timeline["params"].(map[string]any)["types"])

	for _, kept := range []response{event, caseEvent, source, rejected, access} {
		for _, s := range secrets {
			require.NotContains(t, string(kept.body), s)
		}
	}
	for _, s := range secrets {
		require.False(t, strings.Contains(logs.String(), s), "the log holds %s", s)
	}
}
