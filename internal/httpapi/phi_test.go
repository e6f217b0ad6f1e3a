package httpapi_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/normalize"
)

// Every name the normaliser takes a phone number from is masked in the
// payload analysts and admins read, however the sender spells it.
func TestPhoneAliasesAreMaskedInPayloads(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	keys := append(normalize.PhoneKeys(),
		"Customer Phone number", "callerNumber", "targetNumber", "Caller ID",
		"caller_id", "MSISDN", "dialed-number", "Destination Number", "To", "FROM")
	for _, key := range keys {
		normalised := false
		for _, event := range []string{"abandoned-conversation", "outbound-call"} {
			body := fmt.Sprintf(`{%q:"+447700900123","timestamp":"2024-05-14T09:41:07Z","agentId":"a-1"}`, key)
			res := b.signed(t, config.KindServiceHooks, event, []byte(body), nil)
			require.Equal(t, 200, res.status, string(res.body))
			id := res.json(t)["id"].(string)

			for _, role := range []string{analystKey, adminKey} {
				res = b.read(t, role, "/v1/events/"+id)
				require.Equal(t, 200, res.status, string(res.body))
				require.NotContains(t, string(res.body), "7700900123", "%s %s", event, body)
				var ev apiEvent
				require.NoError(t, json.Unmarshal(res.body, &ev))
				require.Contains(t, string(ev.Payload), `"+44*******123"`, "%s %s", event, body)
			}

			res = b.read(t, auditorKey, "/v1/events/"+id)
			var ev apiEvent
			require.NoError(t, json.Unmarshal(res.body, &ev))
			require.Contains(t, string(ev.Payload), `"+447700900123"`)
			if ev.Data["phone"] == "+447700900123" {
				normalised = true
			}
		}
		require.True(t, normalised, "%q is not a phone alias of either event", key)
	}

	// The report of the defect: an outbound call naming both ends.
	body := `{"agentId":"a-1","callerNumber":"+447700900999","targetNumber":"+447700900123","timestamp":"2024-05-14T10:00:00Z"}`
	res := b.signed(t, config.KindServiceHooks, "outbound-call", []byte(body), nil)
	require.Equal(t, 200, res.status)
	res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
	require.NotContains(t, string(res.body), "7700900999")
	require.NotContains(t, string(res.body), "7700900123")
	require.Contains(t, string(res.body), `"callerNumber":"+44*******999"`)
	require.Contains(t, string(res.body), `"targetNumber":"+44*******123"`)

	// Numbers written as JSON numbers, in a wrapper, with separators.
	body = `{"data":{"msisdn":447700900123,"to":"+44 7700 900123"},"timestamp":"2024-05-14T10:01:00Z"}`
	res = b.signed(t, config.KindServiceHooks, "outbound-call", []byte(body), nil)
	require.Equal(t, 200, res.status)
	res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
	require.NotContains(t, string(res.body), "7700900123")
	require.NotContains(t, string(res.body), "900123")

	// The generic aliases keep what cannot be a phone number.
	body = `{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"case-g","changeStatus":{"oldStatus":"Open","newStatus":"Resolved"},"transition":{"from":"Open","to":"Resolved"},"ticket":{"prefix":"A","number":42},"target":"queue-7"}}`
	res = b.signed(t, config.KindCaseUpdates, "", []byte(body), nil)
	require.Equal(t, 200, res.status)
	res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
	require.Contains(t, string(res.body), `"transition":{"from":"Open","to":"Resolved"}`)
	require.Contains(t, string(res.body), `"number":42`)
	require.Contains(t, string(res.body), `"target":"queue-7"`)
}
