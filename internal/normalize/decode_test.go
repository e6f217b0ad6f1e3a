package normalize

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Values in the example bodies, written out here rather than read back from
// the code under test.
const (
	caseID     = "c0a8012e-5f3b-4d1a-9c77-1b2e3d4f5a60"
	customerID = "8f14e45f-ceea-467f-a0e6-0b6d1c2f5e11"
	ukPhone    = "+447700900123"
	saCaseID   = "a41d2f7e-8c3b-4e59-9f10-6b2d8e4c7a31"
	saUserID   = "6e1f0c7a-2b9d-4c1e-8f3a-0d5b7a9c1e22"
	usPhone    = "+15550100142"
)

var (
	ann      = &Actor{ID: "u-1001", Name: "Ann Lee"}
	bob      = &Actor{ID: "u-1002", Name: "Bob Ray"}
	saAnn    = &Actor{ID: saUserID, Email: "ann.lee@clinic.example"}
	annPayer = &Actor{ID: "u-1001", Name: "Ann Lee", Email: "ann.lee@clinic.example"}
)

// want is the part of an Event a test asserts, with the time as text.
type want struct {
	Type           string
	OccurredAt     string // RFC 3339 in UTC, "" for nil
	CaseID         string
	Phone          string
	CustomerID     string
	ConversationID string
	AgentID        string
	WorkItemID     string
	Queue          string
	TimeInQueueMs  *int64
	IsOutbound     *bool
	Actor          *Actor
	Changes        []Change
	Summary        string
	Blobs          int
	Reply          bool
}

func got(ev Event) want {
	w := want{
		Type: ev.Type, CaseID: ev.CaseID, Phone: ev.Phone, CustomerID: ev.CustomerID,
		ConversationID: ev.ConversationID, AgentID: ev.AgentID, WorkItemID: ev.WorkItemID,
		Queue: ev.Queue, TimeInQueueMs: ev.TimeInQueueMs, IsOutbound: ev.IsOutbound,
		Actor: ev.Actor, Changes: ev.Changes, Summary: ev.Summary, Blobs: len(ev.Blobs),
		Reply: ev.Reply != nil,
	}
	if ev.OccurredAt != nil {
		w.OccurredAt = ev.OccurredAt.Format(time.RFC3339Nano)
	}
	return w
}

// caseWant fills in what every full-case example shares.
func caseWant(w want) want {
	w.CaseID, w.Phone, w.CustomerID = caseID, ukPhone, customerID
	return w
}

func saWant(w want) want {
	w.CaseID, w.Phone, w.CustomerID = saCaseID, usPhone, customerID
	return w
}

var exampleWants = map[string]want{
	"case-updates/CHANGE_CASE_STATUS": caseWant(want{
		Type: "CHANGE_CASE_STATUS", OccurredAt: "2024-05-14T09:30:00.25Z", Actor: ann, AgentID: "u-1001",
		Changes: []Change{{Field: "status", From: "Open", To: "Resolved"}},
		Summary: "Status changed Open -> Resolved by Ann Lee",
	}),
	"case-updates/CHANGE_CASE_STATUS-data-only": {
		Type: "CHANGE_CASE_STATUS", OccurredAt: "2024-05-14T09:05:00Z", CaseID: caseID, Actor: bob, AgentID: "u-1002",
		Changes: []Change{{Field: "status", From: "Open", To: "Pending"}},
		Summary: "Status changed Open -> Pending by Bob Ray",
	},
	"case-updates/CHANGE_CASE_STATUS-flat": {
		Type: "CHANGE_CASE_STATUS", OccurredAt: "2024-05-14T09:05:00Z", CaseID: caseID, Actor: bob, AgentID: "u-1002",
		Changes: []Change{{Field: "status", From: "Pending", To: "Waiting"}},
		Summary: "Status changed Pending -> Waiting by Bob Ray",
	},
	"case-updates/ADD_CASE_COMMENT": caseWant(want{
		Type: "ADD_CASE_COMMENT", OccurredAt: "2024-05-14T09:15:02.731Z", Actor: &Actor{Name: "Ann Lee"},
		Summary: "Comment added by Ann Lee with 2 attachments", Blobs: 2,
	}),
	"case-updates/ADD_CASE_COMMENT-data-only": {
		Type: "ADD_CASE_COMMENT", OccurredAt: "2024-05-14T09:20:00Z", Actor: &Actor{Name: "Bob Ray"},
		Summary: "Comment added by Bob Ray with 1 attachment", Blobs: 1,
	},
	"case-updates/ADD_CASE_DECISION": caseWant(want{
		Type: "ADD_CASE_DECISION", OccurredAt: "2024-05-14T09:40:10Z", Summary: "Decision added",
	}),
	"case-updates/ADD_CASE_ATTACHMENT": caseWant(want{
		Type: "ADD_CASE_ATTACHMENT", OccurredAt: "2024-05-14T09:42:31.9Z", Actor: &Actor{Name: "Cara Diaz"},
		Summary: "Attachment added by Cara Diaz", Blobs: 1,
	}),
	"case-updates/ADD_FORM_RESPONSE": caseWant(want{
		Type: "ADD_FORM_RESPONSE", OccurredAt: "2024-05-14T09:44:00Z",
		Summary: "Form response added",
	}),
	"case-updates/ADD_CASE_ASSIGNEE": caseWant(want{
		Type: "ADD_CASE_ASSIGNEE", OccurredAt: "2024-05-14T09:46:12Z", Actor: bob,
		Changes: []Change{{Field: "assignee", To: "Bob Ray"}},
		Summary: "Assignee added: Bob Ray",
	}),
	"case-updates/REMOVE_CASE_ASSIGNEE": caseWant(want{
		Type: "REMOVE_CASE_ASSIGNEE", OccurredAt: "2024-05-14T09:47:30Z", Actor: bob,
		Changes: []Change{{Field: "assignee", From: "Bob Ray"}, {Field: "assignee", From: "Eve Park"}},
		Summary: "Assignees removed: Bob Ray, Eve Park",
	}),
	"case-updates/PAYMENT_ADDED": caseWant(want{
		Type: "PAYMENT_ADDED", OccurredAt: "2024-05-14T09:50:00Z", Actor: annPayer, AgentID: "u-1001",
		Changes: []Change{{Field: "payment.status", To: "Pending"}},
		Summary: "Payment added by Ann Lee (status Pending)",
	}),
	"case-updates/PAYMENT_COMPLETED": caseWant(want{
		Type: "PAYMENT_COMPLETED", OccurredAt: "2024-05-16T13:02:11Z",
		Changes: []Change{{Field: "payment.status", To: "Completed"}},
		Summary: "Payment completed (status Completed)",
	}),
	"case-updates/ORDER_CREATED": caseWant(want{
		Type: "ORDER_CREATED", OccurredAt: "2024-05-14T10:01:00Z",
		Changes: []Change{{Field: "order.status", To: "Created"}},
		Summary: "Order created (status Created)",
	}),
	"case-updates/ORDER_STATUS_CHANGED": caseWant(want{
		Type: "ORDER_STATUS_CHANGED", OccurredAt: "2024-05-15T08:30:00Z",
		Changes: []Change{{Field: "order.status", To: "Shipped"}},
		Summary: "Order status changed to Shipped",
	}),
	"case-updates/ORDER_TRACKING_ADDED": caseWant(want{
		Type: "ORDER_TRACKING_ADDED", OccurredAt: "2024-05-15T08:35:00Z",
		Changes: []Change{{Field: "order.trackingId", To: "1Z999AA10123456784"}},
		Summary: "Order tracking added",
	}),
	"case-updates/DELETE_ATTACHMENT": caseWant(want{
		Type: "DELETE_ATTACHMENT", OccurredAt: "2024-05-15T09:00:00Z", Actor: ann, AgentID: "u-1001",
		Summary: "Attachment deleted by Ann Lee",
	}),
	"case-updates/CREATE_CASE": caseWant(want{
		Type: "CREATE_CASE", OccurredAt: "2024-05-14T08:55:03.412Z", Actor: ann, AgentID: "u-1001",
		Changes: []Change{{Field: "status", To: "Open"}},
		Summary: "Case created by Ann Lee (status Open)",
	}),
	"case-updates/ESCALATE_CASE": caseWant(want{
		Type: "ESCALATE_CASE", OccurredAt: "2024-05-15T09:10:00Z", Actor: ann, AgentID: "u-1001",
		Changes: []Change{{Field: "escalated", From: "false", To: "true"}},
		Summary: "Case escalated by Ann Lee",
	}),
	"case-updates/DEESCALATE_CASE": caseWant(want{
		Type: "DEESCALATE_CASE", OccurredAt: "2024-05-15T11:10:00Z", Actor: bob, AgentID: "u-1002",
		Changes: []Change{{Field: "escalated", From: "true", To: "false"}},
		Summary: "Case de-escalated by Bob Ray",
	}),
	"case-updates/DELETE_CASE_COMMENT": caseWant(want{
		Type: "DELETE_CASE_COMMENT", OccurredAt: "2024-05-15T11:20:00Z", Actor: bob, AgentID: "u-1002",
		Summary: "Comment deleted by Bob Ray",
	}),
	"case-updates/ARCHIVE_CASE": caseWant(want{
		Type: "ARCHIVE_CASE", OccurredAt: "2024-05-16T08:00:00Z", Actor: ann, AgentID: "u-1001",
		Changes: []Change{{Field: "archived", From: "false", To: "true"}},
		Summary: "Case archived by Ann Lee",
	}),
	"case-updates/REOPEN_CASE": caseWant(want{
		Type: "REOPEN_CASE", OccurredAt: "2024-05-17T08:00:00Z", Actor: ann, AgentID: "u-1001",
		Changes: []Change{{Field: "archived", From: "true", To: "false"}},
		Summary: "Case reopened by Ann Lee",
	}),

	"service-actions/before-resolve": saWant(want{
		Type: "before-resolve", Actor: saAnn, AgentID: saUserID, Reply: true,
		Summary: "Before resolve by ann.lee@clinic.example (status Serving, ticket A42)",
	}),
	"service-actions/before-book-appointment": saWant(want{
		Type: "before-book-appointment", Actor: saAnn, AgentID: saUserID, Reply: true,
		Changes: []Change{{Field: "appointment", To: "2024-05-20T13:30:00Z"}},
		Summary: "Before book appointment by ann.lee@clinic.example (status Pending, ticket A42, appointment 2024-05-20T13:30:00Z)",
	}),
	"service-actions/after-book-appointment": saWant(want{
		Type: "after-book-appointment", Actor: saAnn, AgentID: saUserID,
		Changes: []Change{{Field: "appointment", To: "2024-05-20T13:30:00Z"}},
		Summary: "After book appointment by ann.lee@clinic.example (status Pending, ticket A42, appointment 2024-05-20T13:30:00Z)",
	}),
	"service-actions/before-check-in": saWant(want{
		Type: "before-check-in", Reply: true,
		Summary: "Before check in (status Pending, ticket A42, appointment 2024-05-20T13:30:00Z)",
	}),
	"service-actions/after-check-in": saWant(want{
		Type:    "after-check-in",
		Summary: "After check in (status Waiting, ticket A42, appointment 2024-05-20T13:30:00Z)",
	}),
	"service-actions/before-queue-up": saWant(want{
		Type: "before-queue-up", Actor: saAnn, AgentID: saUserID, Reply: true,
		Summary: "Before queue up by ann.lee@clinic.example (status Waiting, ticket A42)",
	}),
	"service-actions/after-queue-up": saWant(want{
		Type: "after-queue-up", Actor: saAnn, AgentID: saUserID,
		Summary: "After queue up by ann.lee@clinic.example (status Waiting, ticket A42)",
	}),
	"service-actions/after-resolve": saWant(want{
		Type: "after-resolve", Actor: saAnn, AgentID: saUserID,
		Summary: "After resolve by ann.lee@clinic.example (status Resolved, ticket A42)",
	}),
	"service-actions/after-close": saWant(want{
		Type: "after-close", AgentID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
		Actor:   &Actor{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Email: "bob.ray@clinic.example"},
		Summary: "After close by bob.ray@clinic.example (status Closed, ticket A42)",
	}),
	"service-actions/after-start-work": saWant(want{
		Type: "after-start-work", Actor: saAnn, AgentID: saUserID,
		Summary: "After start work by ann.lee@clinic.example (status Serving, ticket A42)",
	}),

	"service-hooks/abandoned-conversation": {
		Type: "abandoned-conversation", OccurredAt: "2024-05-14T09:41:07.523Z", Phone: ukPhone,
		ConversationID: "6b0f3e2a9d8c4b1ea7f5c3d1e9b2a4c6", Queue: "Sales", TimeInQueueMs: ptr[int64](42000),
		Summary: "Abandoned in queue Sales after 42s",
	},
	"service-hooks/abandoned-conversation-prose": {
		Type: "abandoned-conversation", OccurredAt: "2024-05-14T09:41:07Z", Phone: ukPhone,
		Queue: "Billing", TimeInQueueMs: ptr[int64](90000),
		Summary: "Abandoned in queue Billing after 1m30s",
	},
	"service-hooks/abandoned-conversation-wrapped-ms": {
		Type: "abandoned-conversation", OccurredAt: "2024-05-14T09:41:07.123Z", Phone: usPhone,
		ConversationID: "c-20240514-0007", Queue: "Support", TimeInQueueMs: ptr[int64](1500),
		Summary: "Abandoned in queue Support after 1.5s",
	},
	"service-hooks/abandoned-conversation-iso-duration": {
		Type: "abandoned-conversation", OccurredAt: "2024-05-14T09:41:07Z", Phone: "+447700900456",
		ConversationID: "conv-77a1", Queue: "Pharmacy", TimeInQueueMs: ptr[int64](125500),
		Summary: "Abandoned in queue Pharmacy after 2m5.5s",
	},
	"service-hooks/abandoned-conversation-snake-case": {
		Type: "abandoned-conversation", OccurredAt: "2024-05-14T09:41:07.123456789Z", Phone: "+447700900789",
		CustomerID: "6d820576a3864160a715312b4e9ac376", Queue: "sales-uk", TimeInQueueMs: ptr[int64](12250),
		Summary: "Abandoned in queue sales-uk after 12.25s",
	},
	"service-hooks/abandoned-conversation-webchat": {
		Type: "abandoned-conversation", OccurredAt: "2024-05-14T09:41:07Z",
		ConversationID: "48fad19d15104c8fbd7344853f35019e", Queue: "Web chat", TimeInQueueMs: ptr[int64](65000),
		Summary: "Abandoned in queue Web chat after 1m5s",
	},
	"service-hooks/outbound-call": {
		Type: "outbound-call", OccurredAt: "2024-05-14T09:52:30.1234567Z", Phone: ukPhone,
		AgentID: "638858857ff57ad8637a7528", Actor: &Actor{ID: "638858857ff57ad8637a7528"},
		Summary: "Outbound call started by agent 638858857ff57ad8637a7528",
	},
	"service-hooks/workitem-closed": {
		Type: "workitem-closed", OccurredAt: "2022-03-08T07:41:47.6052457Z", Phone: "+123456789",
		CustomerID: "6d820576a3864160a715312b4e9ac376", ConversationID: "48fad19d15104c8fbd7344853f35019e",
		AgentID: "638858857ff57ad8637a7528", WorkItemID: "ff34b1fb68cd4f7f9921e70c08fab7a7",
		IsOutbound: ptr(true),
		Actor:      &Actor{ID: "638858857ff57ad8637a7528", Name: "Agent John", Email: "john@agent.com"},
		Summary:    "Work item closed by Agent John (Webchat, outbound)",
	},
}

func TestDecodeExamples(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, f := range eventFiles(t) {
		key := string(f.kind) + "/" + f.name
		seen[key] = true
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			w, ok := exampleWants[key]
			if !ok {
				t.Fatalf("no expectations for %s: add them to exampleWants", key)
			}
			body := readFile(t, f.path)
			ev, err := Decode(f.kind, f.pathEvent, body, Options{DefaultCountryCode: "44"})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if g := got(ev); !reflect.DeepEqual(g, w) {
				t.Errorf("decoded\n got %+v\nwant %+v", g, w)
				if g.Actor != nil && w.Actor != nil {
					t.Errorf("actor got %+v want %+v", *g.Actor, *w.Actor)
				}
			}
			if err := checkDoc(ev.Doc); err != nil {
				t.Errorf("doc: %v", err)
			}
			if ev.Lossy {
				t.Errorf("example body decoded as lossy")
			}
			if len(ev.Blobs) == 0 {
				same, err := sameJSON(body, ev.Doc)
				if err != nil || !same {
					t.Errorf("doc does not hold the same data as the body (err %v)", err)
				}
			}
		})
	}
	for key := range exampleWants {
		if !seen[key] {
			t.Errorf("expectations for %s but no file", key)
		}
	}
}

// Every documented case-update event has an example, and every known path
// event of the other kinds.
func TestExamplesCoverEveryEvent(t *testing.T) {
	t.Parallel()
	have := map[string]bool{}
	for _, f := range eventFiles(t) {
		have[string(f.kind)+"/"+f.name] = true
	}
	for name := range caseEvents {
		if !have["case-updates/"+name] {
			t.Errorf("no example for case-updates/%s", name)
		}
	}
	for _, k := range []Kind{ServiceActions, ServiceHooks} {
		for _, e := range KnownEvents(k) {
			if !have[string(k)+"/"+e] {
				t.Errorf("no example for %s/%s", k, e)
			}
		}
	}
}

// Summaries are shown to analysts with PHI redacted: none of the clinical or
// contact content of the examples may leak into them.
func TestSummariesCarryNoPHI(t *testing.T) {
	t.Parallel()
	phi := []string{
		"dizziness", "150/95", "Penicillin", "allergies", "Amlodipine", "5 mg", "Blister",
		"repeat prescription", "Duplicate of", "Called back", "jordan", "7700", "555", "+44", "+1",
		"visit-notes", "rash.png", "referral.pdf", "Consultation fee", "45.5", "VmlzaXQ", "iVBOR",
		"Job well done", "example.org", "123456789",
	}
	for _, f := range eventFiles(t) {
		ev, err := Decode(f.kind, f.pathEvent, readFile(t, f.path), Options{DefaultCountryCode: "44"})
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		if ev.Summary == "" {
			t.Errorf("%s: empty summary", f.name)
		}
		for _, p := range phi {
			if strings.Contains(strings.ToLower(ev.Summary), strings.ToLower(p)) {
				t.Errorf("%s: summary %q contains %q", f.name, ev.Summary, p)
			}
		}
	}
}
