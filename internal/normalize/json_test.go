package normalize

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		kind      Kind
		pathEvent string
		body      string
		want      error
	}{
		{"empty body", ServiceHooks, "outbound-call", "", ErrNotJSON},
		{"truncated", CaseUpdates, "", `{"event":"CREATE_CASE","payload":{`, ErrNotJSON},
		{"trailing garbage", ServiceHooks, "outbound-call", `{} {}`, ErrNotJSON},
		{"single quotes", ServiceActions, "before-resolve", `{'caseId':'1'}`, ErrNotJSON},
		{"raw control character", ServiceHooks, "outbound-call", "{\"a\":\"x\ny\"}", ErrNotJSON},
		{"bad escape", ServiceHooks, "outbound-call", `{"a":"\x"}`, ErrNotJSON},
		{"leading zero", ServiceHooks, "outbound-call", `{"a":01}`, ErrNotJSON},
		{"NaN", ServiceHooks, "outbound-call", `{"a":NaN}`, ErrNotJSON},
		{"too deep", ServiceHooks, "outbound-call", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), ErrNotJSON},
		{"form encoded", ServiceActions, "before-resolve", `caseId=1&status=Open`, ErrNotJSON},
		{"array body", CaseUpdates, "", `[{"event":"CREATE_CASE"}]`, ErrMissingEventType},
		{"string body", CaseUpdates, "", `"CREATE_CASE"`, ErrMissingEventType},
		{"no event", CaseUpdates, "", `{"payload":{"caseId":"1"}}`, ErrMissingEventType},
		{"empty event", CaseUpdates, "", `{"event":"  ","payload":{}}`, ErrMissingEventType},
		{"numeric event", CaseUpdates, "", `{"event":7,"payload":{}}`, ErrMissingEventType},
		{"event with a line break", CaseUpdates, "", `{"event":"CREATE\nCASE"}`, ErrMissingEventType},
		{"overlong event", CaseUpdates, "", `{"event":"` + strings.Repeat("X", 200) + `"}`, ErrMissingEventType},
		{"unknown service action", ServiceActions, "before-delete", `{}`, ErrUnknownEvent},
		{"no service action", ServiceActions, "", `{}`, ErrUnknownEvent},
		{"unknown service hook", ServiceHooks, "call-ended", `{}`, ErrUnknownEvent},
		{"service hook under service actions", ServiceActions, "outbound-call", `{}`, ErrUnknownEvent},
		{"unknown event before bad JSON", ServiceHooks, "nope", `{`, ErrUnknownEvent},
		{"unknown kind", Kind("email"), "", `{}`, ErrUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := Decode(tt.kind, tt.pathEvent, []byte(tt.body), Options{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if ev.Doc != nil || ev.Type != "" || ev.Reply != nil {
				t.Errorf("event not zero on error: %+v", ev)
			}
		})
	}
}

// Errors end up in logs and problem responses; the body carries PHI.
func TestErrorsDoNotQuoteTheBody(t *testing.T) {
	t.Parallel()
	const secret = "Jordan-Patient-HIV-positive"
	bodies := []string{
		`{"note":"` + secret + `"`,
		`{"note":"` + secret + `",` + secret + `}`,
		`{"note": ` + secret + `}`,
		`{"event":"` + strings.Repeat(secret, 10) + `"}`,
	}
	for _, b := range bodies {
		for _, k := range []Kind{CaseUpdates, ServiceActions, ServiceHooks} {
			_, err := Decode(k, "before-resolve", []byte(b), Options{})
			if err != nil && strings.Contains(err.Error(), "Jordan") {
				t.Errorf("%s: error %q quotes the body", k, err)
			}
		}
	}
	_, err := Decode(CaseUpdates, "", []byte(`{"a":1,}`), Options{})
	if err == nil || !strings.Contains(err.Error(), "offset 7") {
		t.Errorf("syntax error %v should name the offset", err)
	}
}

func TestCaseEventFallsBackToPath(t *testing.T) {
	t.Parallel()
	ev, err := Decode(CaseUpdates, "ESCALATE_CASE", []byte(`{"payload":{"escalated":{"caseId":"c-9","isEscalated":true}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "ESCALATE_CASE" || ev.CaseID != "c-9" {
		t.Errorf("got type %q case %q", ev.Type, ev.CaseID)
	}
	// The body wins over the path.
	ev, err = Decode(CaseUpdates, "ESCALATE_CASE", []byte(`{"event":"ARCHIVE_CASE","payload":{}}`), Options{})
	if err != nil || ev.Type != "ARCHIVE_CASE" {
		t.Errorf("got %q, %v; want the body's event", ev.Type, err)
	}
}

func TestUndocumentedCaseEvent(t *testing.T) {
	t.Parallel()
	body := `{"event":"CHANGE_CASE_PRIORITY","payload":{"id":"c-1","caseNumber":"CV-1","status":"Open",
		"contactPhoneNumber":"+1 555 010 0199","customerId":"cust-3","updatedAt":"2024-06-01T10:00:00Z",
		"caller":{"id":"u-7","firstName":"Gil","lastName":"Oh"}}}`
	ev, err := Decode(CaseUpdates, "", []byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := want{
		Type: "CHANGE_CASE_PRIORITY", OccurredAt: "2024-06-01T10:00:00Z", CaseID: "c-1", Phone: "+15550100199",
		CustomerID: "cust-3", AgentID: "u-7", Actor: &Actor{ID: "u-7", Name: "Gil Oh"}, Summary: "Change case priority by Gil Oh",
	}
	if g := got(ev); !equalWant(g, w) {
		t.Errorf("got %+v\nwant %+v", g, w)
	}
}

// An event object's own id is not the case id: in "event data only" mode a
// payment or order has a status and an id too.
func TestFlatPayloadIDIsNotCaseID(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"event":"PAYMENT_ADDED","payload":{"id":"pm-1","status":"Pending","amount":3}}`,
		`{"event":"ORDER_CREATED","payload":{"id":"or-1","status":"Created","trackingId":null}}`,
		`{"event":"ADD_CASE_COMMENT","payload":{"id":"cm-1","text":"x","createdAt":"2024-01-01T00:00:00Z"}}`,
	} {
		ev, err := Decode(CaseUpdates, "", []byte(body), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if ev.CaseID != "" {
			t.Errorf("%s: case id %q, want none", body, ev.CaseID)
		}
	}
	// Whereas a full case with the event object beside it is the case.
	ev, _ := Decode(CaseUpdates, "", []byte(`{"event":"PAYMENT_ADDED","payload":{"id":"c-5","status":"Open","payment":{"id":"pm-1","status":"Pending"}}}`), Options{})
	if ev.CaseID != "c-5" {
		t.Errorf("case id %q, want c-5", ev.CaseID)
	}
	// And a top-level case id is the last resort.
	ev, _ = Decode(CaseUpdates, "", []byte(`{"event":"PAYMENT_ADDED","caseId":"c-6","payload":{"payment":{"id":"pm-1"}}}`), Options{})
	if ev.CaseID != "c-6" {
		t.Errorf("case id %q, want c-6", ev.CaseID)
	}
}

func TestOverlongIdentifiersAreDropped(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("9", maxKeyLen+1)
	ev, err := Decode(CaseUpdates, "", []byte(`{"event":"X","payload":{"caseId":"`+long+`","customerId":"ok-1"}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.CaseID != "" || ev.CustomerID != "ok-1" {
		t.Errorf("case %q customer %q", ev.CaseID, ev.CustomerID)
	}
}

func equalWant(a, b want) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// The indexed copy keeps what jsonb can hold and says when it had to change
// more than attachment contents.
func TestDocAndLossy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		doc   string
		lossy bool
	}{
		{"compact and ordered", "{ \"b\" : 1 ,\n \"a\" : [ true , null , false ] }", `{"b":1,"a":[true,null,false]}`, false},
		{"numbers keep their text", `{"n":[1.50,-0,1E+2,12345678901234567890123,0.1e-5]}`, `{"n":[1.50,-0,1E+2,12345678901234567890123,0.1e-5]}`, false},
		{"escapes normalised", `{"s":"\u0041\/\t\"\\\u00e9\ud83d\ude00"}`, "{\"s\":\"A/\\t\\\"\\\\é😀\"}", false},
		{"control characters stay escaped", `{"s":"\u0001\u001f"}`, `{"s":"\u0001\u001f"}`, false},
		{"literal replacement char is not lossy", `{"s":"a�b","t":"\ufffd"}`, `{"s":"a�b","t":"�"}`, false},
		{"NUL in value", `{"s":"a\u0000b"}`, `{"s":"a�b"}`, true},
		{"NUL in key", `{"k\u0000":1}`, `{"k�":1}`, true},
		{"invalid UTF-8", "{\"s\":\"a\xffb\xc3\"}", `{"s":"a�b�"}`, true},
		{"lone high surrogate", `{"s":"\ud800x"}`, `{"s":"�x"}`, true},
		{"lone low surrogate", `{"s":"\udc00"}`, `{"s":"�"}`, true},
		{"high surrogate before non-surrogate escape", `{"s":"\ud800\u0041"}`, `{"s":"�A"}`, true},
		{"duplicate keys keep the last value", `{"a":1,"b":2,"a":{"x":3}}`, `{"a":{"x":3},"b":2}`, true},
		{"nested duplicate", `[{"k":1,"k":1}]`, `[{"k":1}]`, true},
		{"number too large for numeric", `{"n":1e131072}`, `{"n":"1e131072"}`, true},
		{"number too precise for numeric", `{"n":1e-16384}`, `{"n":"1e-16384"}`, true},
		{"largest numeric fits", `{"n":9.9e131071,"m":1.5e-16382}`, `{"n":9.9e131071,"m":1.5e-16382}`, false},
		{"huge exponent", `{"n":0e99999999999}`, `{"n":"0e99999999999"}`, true},
		{"BOM skipped", "\xef\xbb\xbf{\"a\":1}", `{"a":1}`, false},
		{"scalar body", ` 42 `, `42`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := Decode(ServiceHooks, "outbound-call", []byte(tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.Doc) != tt.doc {
				t.Errorf("doc\n got %s\nwant %s", ev.Doc, tt.doc)
			}
			if ev.Lossy != tt.lossy {
				t.Errorf("lossy = %v, want %v", ev.Lossy, tt.lossy)
			}
			if err := checkDoc(ev.Doc); err != nil {
				t.Error(err)
			}
		})
	}
}

// Many duplicate keys go through the map path of the duplicate check.
func TestManyKeys(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"event":"X","payload":{`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + `":1`)
	}
	b.WriteString(`,"ka":2,"caseId":"c-big"}}`)
	ev, err := Decode(CaseUpdates, "", []byte(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Lossy || ev.CaseID != "c-big" {
		t.Errorf("lossy %v case %q", ev.Lossy, ev.CaseID)
	}
	if !strings.Contains(string(ev.Doc), `"ka":2`) || strings.Count(string(ev.Doc), `"ka":`) != 1 {
		t.Errorf("duplicate not merged: %s", ev.Doc)
	}
}

func TestParserAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	inputs := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `-`, `1.`, `.5`, `1e`, `1e+`, `01`, `1.5e-3`, `tru`, `true`, `nul`,
		`{"a"}`, `{"a":}`, `{,}`, `[1,]`, `[,1]`, `{"a":1,}`, `"\u12"`, `"\uZZZZ"`, `"\ud800"`,
		"\"\t\"", "\"\x7f\"", "\"\xff\"", ` [ 1 , 2 ] `, "[1]\n", `[1] x`, `{"a":[{"b":[{}]}]}`,
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		`"\/\b\f\n\r\t"`, `"\a"`, `1E400`, `-1.0E-0`, `[1 2]`, `{"a" "b"}`, "\x00", `"x`,
	}
	for _, in := range inputs {
		_, _, err := parseJSON([]byte(in))
		if (err == nil) != json.Valid([]byte(in)) {
			t.Errorf("%.40q: parse err %v, json.Valid %v", in, err, json.Valid([]byte(in)))
		}
	}
}

// In full-case mode the case's own createdBy made the case, not the event.
func TestCaseCreatorIsNotTheActor(t *testing.T) {
	t.Parallel()
	body := `{"event":"CHANGE_CASE_STATUS","payload":{"id":"c-1","status":"Closed","createdBy":{"id":"u-9","firstName":"Old","lastName":"Creator"},
		"assignees":[{"assignee":{"id":"u-8"}}],"changeStatus":{"caseId":"c-1","newStatus":"Closed","oldStatus":"Open"}}}`
	ev, err := Decode(CaseUpdates, "", []byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Actor != nil || ev.Summary != "Status changed Open -> Closed" {
		t.Errorf("actor %+v, summary %q", ev.Actor, ev.Summary)
	}
}

// The parser's stacks are reused from body to body; a tree must not share
// them, or the end of its parse or a later parse would change an event.
func TestTreesOutliveTheParsersStacks(t *testing.T) {
	t.Parallel()
	first := `{"a":[1,{"b":"x","c":[true,null]}],"d":{"e":"y"},"f":"z"}`
	tree, _, err := parseJSON([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		other := `{"q":[` + strings.Repeat(`{"r":"s","t":[9,8,7]},`, i) + `0],"u":{"v":"w","a":"b"}}`
		if _, _, err := parseJSON([]byte(other)); err != nil {
			t.Fatal(err)
		}
	}
	var want, got any
	if err := json.Unmarshal([]byte(first), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(tree.appendJSON(nil), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("the tree holds %s, not %s", tree.appendJSON(nil), first)
	}
}
