package redact_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/normalize"
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
		"other":{"text":"public comment","isRestricted":false,
			"attachments":[{"id":"a3","isPHI":true,"fileName":"lab.pdf"},{"id":"a4","isPHI":false,"fileName":"map.pdf"}]}}}`
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
	// Inside a restricted comment, every attachment is restricted with it.
	require.Equal(t, redact.Redacted, atts[1].(map[string]any)["fileName"])
	require.Equal(t, "a2", atts[1].(map[string]any)["id"])
	require.Equal(t, redact.Redacted, p["decision"].(map[string]any)["medInfo"])
	require.Equal(t, "ok", p["decision"].(map[string]any)["decisionText"])
	r := p["response"].(map[string]any)
	require.Equal(t, redact.Redacted, r["text"])
	require.Equal(t, "Symptoms?", r["question"].(map[string]any)["text"])
	require.Equal(t, "public comment", p["other"].(map[string]any)["text"])
	otherAtts := p["other"].(map[string]any)["attachments"].([]any)
	require.Equal(t, redact.Redacted, otherAtts[0].(map[string]any)["fileName"])
	require.Equal(t, "map.pdf", otherAtts[1].(map[string]any)["fileName"])

	require.Equal(t, `"[redacted]"`, string(redact.Document([]byte("{not json"))))
}

// A flag spelled otherwise than the upstream documents spell it still
// protects what it flags.
func TestDocumentFlagsHoweverSpelled(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{
		`"IsRestricted":true`, `"isRestricted":"true"`, `"is_phi":true`, `"ISPHI":"TRUE"`, `"isPHI":1`,
	} {
		doc := `{"comment":{"id":"c1",` + flag + `,"text":"HIV positive","body":"HIV positive",
			"attachments":[{"id":"a1","fileName":"HIV_result.pdf"}]}}`
		got := string(redact.Document([]byte(doc)))
		require.NotContains(t, got, "HIV", "%s: %s", flag, got)
		require.Contains(t, got, `"c1"`, got)
	}
	// A flagged object's members that are objects themselves are hidden
	// member by member: their ids and dates stay.
	got := string(redact.Document([]byte(`{"comment":{"isRestricted":true,"body":{"id":"b-1","createdAt":"2024-05-01","text":"HIV positive"}}}`)))
	require.NotContains(t, got, "HIV")
	require.Contains(t, got, `"b-1"`)
	require.Contains(t, got, `"2024-05-01"`)
	for _, flag := range []string{`"isRestricted":false`, `"isPHI":"false"`, `"isPHI":0`, `"isPHI":null`} {
		doc := `{"comment":{"id":"c1",` + flag + `,"text":"see you Monday"}}`
		require.Contains(t, string(redact.Document([]byte(doc))), "see you Monday", flag)
	}
}

// Every name the normaliser reads a phone number from is masked, however it
// is spelled, at any depth, as a string, a number or a list.
func TestDocumentMasksEveryPhoneAlias(t *testing.T) {
	t.Parallel()
	keys := []string{
		"Customer Phone number", "customer_phone", "Caller ID", "caller-number",
		"callerNumber", "targetNumber", "MSISDN", "DialedNumber", "ANI",
		"from", "To", "target", "destination", "number",
	}
	keys = append(keys, normalize.PhoneKeys()...)
	for _, k := range keys {
		for _, doc := range []string{
			`{%q:"+447700900123"}`,
			`{%q:447700900123}`,
			`{"data":{"call":{%q:"+44 7700 900123"}}}`,
			`{%q:["+447700900123"]}`,
		} {
			doc := fmt.Sprintf(doc, k)
			got := string(redact.Document([]byte(doc)))
			require.NotContains(t, got, "900123", "%s: %s", doc, got)
			require.Contains(t, got, "***", doc)
		}
	}
}

// The aliases that are also ordinary words keep values that cannot be phone
// numbers.
func TestDocumentKeepsNonPhonesUnderGenericKeys(t *testing.T) {
	t.Parallel()
	doc := `{"changeStatus":{"from":"Open","to":"Resolved"},"ticket":{"prefix":"A","number":42},
		"target":"queue-7","destination":"Billing","order":{"number":"A-1001"}}`
	var got map[string]any
	require.NoError(t, json.Unmarshal(redact.Document([]byte(doc)), &got))
	require.Equal(t, map[string]any{"from": "Open", "to": "Resolved"}, got["changeStatus"])
	require.Equal(t, map[string]any{"prefix": "A", "number": 42.0}, got["ticket"])
	require.Equal(t, "queue-7", got["target"])
	require.Equal(t, "Billing", got["destination"])
	require.Equal(t, "A-1001", got["order"].(map[string]any)["number"])

	// A web chat's customer identifier is an e-mail address.
	require.JSONEq(t, `{"customerIdentifier":"p**@example.com"}`,
		string(redact.Document([]byte(`{"customerIdentifier":"pat@example.com"}`))))
}

func TestText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Before resolve by ann.lee@clinic.example":                   "Before resolve by a******@clinic.example",
		"Before resolve by ann.lee@clinic.example (status Open)":     "Before resolve by a******@clinic.example (status Open)",
		"Assignees added: ann@x.example, bob@y.example":              "Assignees added: a**@x.example, b**@y.example",
		"Outbound call by +447700900123":                             "Outbound call by +44*******123",
		"Work item closed by 07700 900123 (Voice, inbound)":          "Work item closed by 077******123 (Voice, inbound)",
		"Called (020) 7946 0958.":                                    "Called (02*********958.",
		"Before book appointment (appointment 2024-05-01T10:00:00Z)": "Before book appointment (appointment 2024-05-01T10:00:00Z)",
		"Abandoned in queue Q9 after 1m30s":                          "Abandoned in queue Q9 after 1m30s",
		"Comment added by user 12345 with 2 attachments":             "Comment added by user 12345 with 2 attachments",
		"Before check in (status Waiting, ticket A42)":               "Before check in (status Waiting, ticket A42)",
		"Status changed by user 6d820576a3864160a715312b4e9ac376":    "Status changed by user 6d820576a3864160a715312b4e9ac376",
		"Outbound call by ann@clinic.exa…":                           "Outbound call by a**@clinic.exa…",
		"Outbound call by +44770090…":                                "Outbound call by +44***090…",
		// A number next to other digits with only a space between.
		"Call back +447700900123 2nd attempt":       "Call back +44*******123 2nd attempt",
		"Callers 07700 900123 0A1 and +14155550100": "Callers 077******123 0A1 and +14******100",
		// National numbers written in dotted groups of up to three digits,
		// as in Switzerland, Belgium and Spain, though they read like an
		// IPv4 address (which is masked too, for that reason).
		"Patient called from 079.123.45.67": "Patient called from 079*******.67",
		"Rappel: 02.123.45.67":              "Rappel: 02.******.67",
		"llamar al 612.34.56.78":            "llamar al 612******.78",
		"tel 91.123.45.67":                  "tel 91.******.67",
	} {
		require.Equal(t, want, redact.Text(in), in)
	}
	// In log lines, an address with its port stays readable; the same run
	// without a port, or not an address, is masked as in Text.
	for in, want := range map[string]string{
		"dial tcp 192.168.100.200:5432: connect: connection refused":  "dial tcp 192.168.100.200:5432: connect: connection refused",
		"failed to connect to 10.20.30.40:6432 (db.example): refused": "failed to connect to 10.20.30.40:6432 (db.example): refused",
		"10.20.30.40:6432 (10.20.30.40)":                              "10.20.30.40:6432 (10******.40)",
		"host 192.168.100.200 unreachable":                            "host 192*********200 unreachable",
		"Patient called from 079.123.45.67:":                          "Patient called from 079*******.67:",
		"callback 612.34.56.78:30":                                    "callback 612******.78:30",
		"Key (phone)=(+447700900123) already exists":                  "Key (phone)=(+44*******123) already exists",
		// Next to what could make it part of an address or a number, Text
		// decides.
		"mail ann@10.0.0.1:25 now":   redact.Text("mail ann@10.0.0.1:25 now"),
		"07700 10.0.0.1:5432 900123": redact.Text("07700 10.0.0.1:5432 900123"),
	} {
		require.Equal(t, want, redact.LogText(in), in)
	}
	require.Equal(t, "dial tcp 192*********200:5432", redact.Text("dial tcp 192.168.100.200:5432"))
	require.JSONEq(t, `[{"field":"assignee","to":"a**@x.example"},{"field":"status","from":"Open","to":"Closed"}]`,
		string(redact.TextIn([]byte(`[{"field":"assignee","to":"ann@x.example"},{"field":"status","from":"Open","to":"Closed"}]`))))
}

// A question flagged isPHI hides its answer however the response spells the
// question, its flag and the answer, and leaves the question's own wording.
func TestDocumentHidesAnswersToPHIQuestions(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"response":{"id":"r1","Question":{"Text":"Symptoms?","IsPHI":true},"Text":"HIV positive"}}`,
		`{"response":{"id":"r1","question":{"text":"Symptoms?","is_phi":"true"},"answer":"HIV positive"}}`,
		`{"response":{"id":"r1","question":{"text":"Symptoms?","isPHI":true},"answers":["HIV positive"]}}`,
	} {
		got := string(redact.Document([]byte(doc)))
		require.NotContains(t, got, "HIV", "%s: %s", doc, got)
		require.Contains(t, got, "Symptoms?", got)
		require.Contains(t, got, `"r1"`, got)
	}
}

// A flagged comment's text sent as an object or a list (HTML beside plain
// text, a rich-text document) is hidden whole but for its ids and dates.
func TestDocumentHidesFlaggedTextInObjects(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"comment":{"id":"c1","isPHI":true,"text":{"id":"t1","html":"<p>HIV positive</p>","plain":"HIV positive"}}}`,
		`{"comment":{"id":"c1","isRestricted":true,"body":[{"type":"paragraph","value":"HIV positive"}]}}`,
		`{"comment":{"id":"c1","isRestricted":true,"message":{"createdAt":"2024-05-01","parts":[{"html":"HIV positive"}]}}}`,
	} {
		got := string(redact.Document([]byte(doc)))
		require.NotContains(t, got, "HIV", "%s: %s", doc, got)
		require.Contains(t, got, `"c1"`, got)
	}
	got := string(redact.Document([]byte(`{"comment":{"isPHI":true,"text":{"id":"t1","createdAt":"2024-05-01","plain":"HIV positive"}}}`)))
	require.Contains(t, got, `"t1"`, got)
	require.Contains(t, got, `"2024-05-01"`, got)
}

// A comment inside a flagged object is read member by member: its text is
// hidden, its author stays.
func TestDocumentKeepsAuthorOfCommentInFlaggedCase(t *testing.T) {
	t.Parallel()
	got := string(redact.Document([]byte(`{"case":{"isRestricted":true,"comment":{"id":"c1","text":"HIV positive","author":{"firstName":"Ann"}}}}`)))
	require.NotContains(t, got, "HIV", got)
	require.Contains(t, got, `"Ann"`, got)
}

// A flagged object's text under a longer name ("commentText", "htmlBody")
// is hidden as under the short one, and so is a link to a flagged
// attachment, which documents are sent as too.
func TestDocumentHidesFlaggedTextUnderLongerNames(t *testing.T) {
	t.Parallel()
	for _, member := range []string{
		`"commentText":"HIV positive"`, `"plain_text":"HIV positive"`, `"HtmlBody":"<p>HIV positive</p>"`,
		`"messageContent":"HIV positive"`, `"attachmentFileName":"HIV_result.pdf"`,
		`"url":"https://files.example/HIV_result.pdf"`, `"downloadLink":"https://files.example/HIV_result.pdf"`,
	} {
		doc := `{"comment":{"id":"c1","caseCommentId":"cc1","createdAt":"2024-05-01","isPHI":true,` + member + `}}`
		got := string(redact.Document([]byte(doc)))
		require.NotContains(t, got, "HIV", "%s: %s", doc, got)
		require.Contains(t, got, `"cc1"`, got)
		require.Contains(t, got, `"2024-05-01"`, got)
	}
}

// A phone number written internationally is masked under any name, also one
// the normaliser does not read (a participant's address, a "caller" or
// "mobile"), and so is any value under a name containing "mobile".
func TestDocumentMasksPhoneNumbersUnderAnyName(t *testing.T) {
	t.Parallel()
	doc := `{"caller":"+447700900123","contact":"+44 (0)7700 900123","Customer":{"Mobile":"07700 900123"},
		"participants":[{"type":"customer","address":"+1 415 555 0100"}]}`
	got := string(redact.Document([]byte(doc)))
	require.NotContains(t, got, "900123", got)
	require.NotContains(t, got, "555 0100", got)

	// Signed numbers that are no phone number stay.
	keep := `{"offset":"+02:00","delta":"+1.5","score":"+100","ref":"+12345","mobileApp":"iOS"}`
	require.JSONEq(t, keep, string(redact.Document([]byte(keep))))
}

// A value that is an e-mail address is masked under any name; one that
// only holds an "@", or holds an address in a sentence, is not.
func TestDocumentMasksEmailAddressesUnderAnyName(t *testing.T) {
	t.Parallel()
	got := string(redact.Document([]byte(`{"customerId":"pat.jones@gmail.com","createdBy":{"login":"ann@clinic.example"},
		"handle":"@pat","note":"mail pat@x.example today"}`)))
	require.JSONEq(t, `{"customerId":"p********@gmail.com","createdBy":{"login":"a**@clinic.example"},
		"handle":"@pat","note":"mail pat@x.example today"}`, got)
}

// ID masks what the payload would mask under any name, and nothing else.
func TestID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pat.jones@gmail.com": "p********@gmail.com",
		"+447700900001":       "+44*******001",
		"conv-42":             "conv-42",
		"6d820576a3864160":    "6d820576a3864160",
		"447700900001":        "447700900001",
		"@pat":                "@pat",
	} {
		require.Equal(t, want, redact.ID(in), in)
	}
}
