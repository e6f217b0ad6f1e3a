package redact_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/redact"
)

func TestMasks(t *testing.T) {
	t.Parallel()
	require.Equal(t, "+44*******123", redact.Phone("+447700900123"))
	require.Equal(t, "***", redact.Phone("123"))
	require.Equal(t, "a******@example.com", redact.Email("ann.lee@example.com"))
	require.Equal(t, "****", redact.Email("nope"))
}

func TestDocument(t *testing.T) {
	t.Parallel()
	doc := `{"event":"ADD_CASE_COMMENT","payload":{
		"contactPhoneNumber":"+447700900123","contactEmail":"ann@example.com",
		"comment":{"id":"c1","text":"private","isRestricted":true,
			"attachments":[{"id":"a1","isPHI":true,"fileName":"scan.pdf","content":{"sha256":"ab","size":3}},
			               {"id":"a2","isPHI":false,"fileName":"menu.pdf","content":{"sha256":"cd","size":4}}]},
		"decision":{"decisionText":"ok","medInfo":{"medicine":"x"}},
		"response":{"text":"my answer","question":{"text":"Symptoms?","isPHI":true}},
		"other":{"text":"public comment","isRestricted":false}}}`
	var got map[string]any
	require.NoError(t, json.Unmarshal(redact.Document([]byte(doc)), &got))
	p := got["payload"].(map[string]any)
	require.Equal(t, "+44*******123", p["contactPhoneNumber"])
	require.Equal(t, "a**@example.com", p["contactEmail"])
	c := p["comment"].(map[string]any)
	require.Equal(t, redact.Redacted, c["text"])
	require.Equal(t, "c1", c["id"])
	atts := c["attachments"].([]any)
	require.Equal(t, redact.Redacted, atts[0].(map[string]any)["fileName"])
	require.Equal(t, redact.Redacted, atts[0].(map[string]any)["content"])
	require.Equal(t, "menu.pdf", atts[1].(map[string]any)["fileName"])
	require.Equal(t, redact.Redacted, p["decision"].(map[string]any)["medInfo"])
	require.Equal(t, "ok", p["decision"].(map[string]any)["decisionText"])
	r := p["response"].(map[string]any)
	require.Equal(t, redact.Redacted, r["text"])
	require.Equal(t, "Symptoms?", r["question"].(map[string]any)["text"])
	require.Equal(t, "public comment", p["other"].(map[string]any)["text"])

	require.Equal(t, `"[redacted]"`, string(redact.Document([]byte("{not json"))))
}
