package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// Bodies the examples do not cover: damaged text, odd shapes, edge numbers.
var extraSeeds = []string{
	``, `{}`, `[]`, `null`, `"x"`, `0`, "\xef\xbb\xbf{}",
	`{"event":"ADD_CASE_COMMENT","payload":{"comment":{"attachments":[{"content":"aGVsbG8="},{"content":"aGVsbG8"}]}}}`,
	`{"event":"X","payload":{"s":"\u0000","k\u0000":"\ud800","dup":1,"dup":2}}`,
	"{\"event\":\"X\",\"payload\":{\"s\":\"\xff\xfe\"}}",
	`{"event":"X","payload":{"n":1e131072,"m":-0.0e-99999,"caseId":12345678901234567890}}`,
	`{"timeInQueue":"PT1H2M3.5S","customerPhoneNumber":"0044 (0)7700 900123","timestamp":1715679667123}`,
	`{"data":{"queue":{"name":"Sales"},"waitTimeMs":"1500ms","callerId":"tel:+15550100142"}}`,
	`{"useCustomerContactInfo":"true","appointment":{"timeUtc":"2024-05-20 13:30:00"}}`,
	`[[[[[[[[[[{"a":[{"b":{}}]}]]]]]]]]]]`,
}

func FuzzDecodeCaseUpdates(f *testing.F) {
	seedFuzz(f, CaseUpdates)
	f.Fuzz(func(t *testing.T, pathEvent string, body []byte) {
		checkDecode(t, CaseUpdates, pathEvent, body)
	})
}

func FuzzDecodeServiceActions(f *testing.F) {
	seedFuzz(f, ServiceActions)
	f.Fuzz(func(t *testing.T, pathEvent string, body []byte) {
		checkDecode(t, ServiceActions, pathEvent, body)
	})
}

func FuzzDecodeServiceHooks(f *testing.F) {
	seedFuzz(f, ServiceHooks)
	f.Fuzz(func(t *testing.T, pathEvent string, body []byte) {
		checkDecode(t, ServiceHooks, pathEvent, body)
	})
}

func seedFuzz(f *testing.F, kind Kind) {
	first := ""
	for _, ef := range eventFiles(f) {
		if ef.kind == kind {
			f.Add(ef.pathEvent, readFile(f, ef.path))
			if first == "" {
				first = ef.pathEvent
			}
		}
	}
	for _, s := range extraSeeds {
		f.Add(first, []byte(s))
	}
}

// checkDecode asserts what must hold for any input: no panic (the fuzzer
// reports those), a jsonb-safe Doc, text-column-safe fields, a valid reply,
// and agreement with encoding/json on what is JSON and what it holds.
func checkDecode(t *testing.T, kind Kind, pathEvent string, body []byte) {
	ev, err := Decode(kind, pathEvent, body, Options{DefaultCountryCode: "44"})

	_, knownPath := canonicalEvent(kind, pathEvent)
	valid := json.Valid(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if (kind == CaseUpdates || knownPath) && errors.Is(err, ErrNotJSON) == valid {
		t.Fatalf("ErrNotJSON = %v but json.Valid = %v (err %v)", errors.Is(err, ErrNotJSON), valid, err)
	}
	if err != nil {
		if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrMissingEventType) && !errors.Is(err, ErrUnknownEvent) {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}

	if err := checkDoc(ev.Doc); err != nil {
		t.Fatalf("doc %q: %v", ev.Doc, err)
	}
	if ev.Reply != nil && !json.Valid(ev.Reply) {
		t.Fatalf("reply is not JSON: %q", ev.Reply)
	}
	if (ev.Reply != nil) != IsBeforeHook(kind, pathEvent) {
		t.Fatalf("reply %q for %s %q", ev.Reply, kind, pathEvent)
	}
	for name, s := range map[string]string{
		"type": ev.Type, "case": ev.CaseID, "phone": ev.Phone, "customer": ev.CustomerID,
		"conversation": ev.ConversationID, "agent": ev.AgentID, "work item": ev.WorkItemID,
		"queue": ev.Queue,
	} {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 || len(s) > maxKeyLen {
			t.Fatalf("%s %q is not safe for a text key column", name, s)
		}
	}
	if !utf8.ValidString(ev.Summary) || strings.ContainsAny(ev.Summary, "\x00\n\r") {
		t.Fatalf("summary %q is not one clean line", ev.Summary)
	}
	if ev.Phone != "" {
		if p, ok := NormalizePhone(ev.Phone, ""); !ok || p != ev.Phone {
			t.Fatalf("phone %q is not E.164", ev.Phone)
		}
	}
	if ev.TimeInQueueMs != nil && *ev.TimeInQueueMs < 0 {
		t.Fatalf("negative time in queue %d", *ev.TimeInQueueMs)
	}
	if ev.OccurredAt != nil && (ev.OccurredAt.Year() < 1971 || ev.OccurredAt.Year() > 9999) {
		t.Fatalf("implausible time %v", ev.OccurredAt)
	}

	if !ev.Lossy && len(ev.Blobs) == 0 {
		same, err := sameJSON(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), ev.Doc)
		if err != nil || !same {
			t.Fatalf("doc %q does not hold the body's data (err %v)", ev.Doc, err)
		}
	}
	// The copy is a fixed point: decoding it again changes nothing.
	again, err := Decode(kind, pathEvent, ev.Doc, Options{DefaultCountryCode: "44"})
	if err != nil {
		t.Fatalf("doc does not decode again: %v", err)
	}
	if again.Lossy || !bytes.Equal(again.Doc, ev.Doc) {
		t.Fatalf("doc is not stable:\n%q\n%q", ev.Doc, again.Doc)
	}
}
