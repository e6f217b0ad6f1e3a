package normalize

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// caseEvent says where one documented case-update event keeps its data.
type caseEvent struct {
	object  string // folded payload member holding the event data object
	summary string // what happened, before " by <actor>"
}

// caseEvents covers the events whose payload objects the case platform
// documents ("Case Updates Webhook Payload Format"). Other event names are
// accepted and read generically.
var caseEvents = map[string]caseEvent{
	"ADD_CASE_COMMENT":     {"comment", "Comment added"},
	"ADD_CASE_DECISION":    {"decision", "Decision added"},
	"ADD_CASE_ATTACHMENT":  {"attachment", "Attachment added"},
	"ADD_FORM_RESPONSE":    {"response", "Form response added"},
	"ADD_CASE_ASSIGNEE":    {"assignees", "Assignee added"},
	"REMOVE_CASE_ASSIGNEE": {"assignees", "Assignee removed"},
	"PAYMENT_ADDED":        {"payment", "Payment added"},
	"PAYMENT_COMPLETED":    {"payment", "Payment completed"},
	"ORDER_CREATED":        {"order", "Order created"},
	"ORDER_STATUS_CHANGED": {"order", "Order status changed"},
	"ORDER_TRACKING_ADDED": {"order", "Order tracking added"},
	"DELETE_ATTACHMENT":    {"deletedattachment", "Attachment deleted"},
	"CREATE_CASE":          {"case", "Case created"},
	"ESCALATE_CASE":        {"escalated", "Case escalated"},
	"DEESCALATE_CASE":      {"escalated", "Case de-escalated"},
	"DELETE_CASE_COMMENT":  {"deletedcomment", "Comment deleted"},
	"ARCHIVE_CASE":         {"archivecase", "Case archived"},
	"REOPEN_CASE":          {"archivecase", "Case reopened"},
	"CHANGE_CASE_STATUS":   {"changestatus", "Status changed"},
}

// caseEventObjects are the event data members of the documented events; an
// undocumented event that carries one of them is read the same way.
var caseEventObjects = []string{
	"changestatus", "escalated", "archivecase", "deletedcomment",
	"deletedattachment", "comment", "decision", "attachment", "response",
	"payment", "order",
}

// caseFields are full-case members: a payload with them is the case object
// (the platform's "full case" mode), so its "id" is the case id.
var caseFields = []string{
	"casenumber", "status", "referencedate", "serviceid", "servicecategoryid",
	"customerrecordid", "contactphonenumber", "contactemail", "unitid", "ticket",
}

// Where case payloads put people, most specific first.
var (
	// actorKeys name users of the platform. A form response's
	// "respondent" is not among them: the seed does not say it is a user
	// rather than the case's customer, whose name is PHI and must stay out
	// of the actor and the summary that analysts read (and whose id under
	// agent id would be a wrong correlation). The payload keeps it.
	actorKeys = []string{"caller", "author", "createdby", "uploadedby", "triggeredby", "user"}
	// makerKeys name who made the event object: a comment's author, an
	// attachment's uploader, a payment's creator. They act only in the
	// event that adds the object; later events carry them as the object's
	// history. The seed names no one else on those objects (a payment has
	// its createdBy, never who completed it), so a later event has an
	// actor only if a caller is named.
	makerKeys = map[string]bool{"author": true, "createdby": true, "uploadedby": true}
	// changerKeys are the actor keys read in events that do not add the
	// event object.
	changerKeys       = slices.DeleteFunc(slices.Clone(actorKeys), func(k string) bool { return makerKeys[k] })
	envelopeActorKeys = []string{"caller", "triggeredby"}
	phoneKeys         = []string{"contactphonenumber", "phonenumber", "phone"}
	custKeys          = []string{"customerrecordid", "customerid"}
	// A case opened from a chat or a call may name the conversation, which
	// the contact center's hooks carry too: the case timeline then finds
	// them by it.
	conversationKeys = []string{"conversationid", "primaryconversationid"}
)

func decodeCaseUpdate(ev *Event, root *value, pathEvent string, opts Options) error {
	if root.kind != kindObject {
		return fmt.Errorf("%w: body is not a JSON object", ErrMissingEventType)
	}
	name := strings.TrimSpace(stringOf(root.get("event")))
	if name == "" {
		name = strings.TrimSpace(pathEvent)
	}
	if name == "" {
		return ErrMissingEventType
	}
	if len(name) > maxEventNameLen {
		return fmt.Errorf("%w: event name longer than %d bytes", ErrMissingEventType, maxEventNameLen)
	}
	// The body's name is already valid UTF-8; a path fallback may not be.
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: event name is not printable UTF-8", ErrMissingEventType)
	}
	ev.Type = name
	upper := strings.ToUpper(name)
	spec, documented := caseEvents[upper]

	// Some senders put the fields at the top level instead of in "payload".
	payload := root.obj("payload")
	if payload == nil {
		payload = root
	}

	// The event data is under its documented member, or, in the platform's
	// "event data only" mode, may be the payload itself.
	var evt *value
	if documented {
		if m := payload.get(spec.object); m != nil {
			evt = m
			if m.kind != kindObject {
				// The assignee events carry a list, not an object; there is
				// no event object to read ids or times from.
				evt = &value{kind: kindObject}
			}
		}
	}
	if evt == nil {
		evt = payload.obj(caseEventObjects...)
	}
	flat := evt == nil
	if flat {
		evt = payload
	}

	caseObj := payload.obj("case")
	if caseObj == nil && upper == "CREATE_CASE" {
		caseObj = payload
	}
	isCase := looksLikeCase(payload, flat)

	// Case id, most specific first.
	ev.CaseID = evt.str("caseid")
	if ev.CaseID == "" {
		ev.CaseID = payload.str("caseid")
	}
	if ev.CaseID == "" {
		ev.CaseID = caseObj.str("id", "caseid")
	}
	if ev.CaseID == "" && isCase {
		ev.CaseID = payload.str("id")
	}
	if ev.CaseID == "" {
		ev.CaseID = root.str("caseid")
	}

	for _, o := range []*value{payload, caseObj, root} {
		if ev.Phone == "" {
			ev.Phone = phoneFrom(o, phoneKeys, opts)
		}
		if ev.CustomerID == "" {
			ev.CustomerID = o.str(custKeys...)
		}
		if ev.ConversationID == "" {
			ev.ConversationID = o.str(conversationKeys...)
		}
	}

	// Whether the event data is an object this event creates. When it is
	// the full case itself, the case was made before this event, unless
	// this event created it.
	creates := createsObject(upper) && (!flat || !isCase || upper == "CREATE_CASE")

	ev.OccurredAt = caseOccurredAt(root, payload, evt, caseObj, upper, flat, creates)

	// The actor is whoever the event object names as acting, its maker only
	// in the event that adds it (so not the full case's createdBy, unless
	// this event created the case); around the event object, only a caller
	// counts for the same reason.
	keys := changerKeys
	if creates {
		keys = actorKeys
	}
	fromAssignee := false
	ev.Actor = actorIn(evt, keys)
	for _, o := range []*value{payload, root} {
		if ev.Actor == nil {
			ev.Actor = actorIn(o, envelopeActorKeys)
		}
	}
	// Agent id holds the user who acted, as service actions and service
	// hooks fill it, so the read side can key every platform's events by
	// that user.
	if ev.Actor != nil {
		ev.AgentID = ev.Actor.ID
	}

	var assignees []string
	if spec.object == "assignees" {
		list := payload.get("assignees", "assignee")
		if list == nil {
			if p := root.get("payload"); p != nil && p.kind == kindArray {
				list = p
			}
		}
		var first *Actor
		assignees, first = assigneesFrom(list)
		if ev.Actor == nil && first != nil {
			// Not the one who acted, but the only person the payload names;
			// it still correlates the event with that user.
			ev.Actor, fromAssignee = first, true
		}
	}

	var what, note string
	ev.Changes, what, note = caseChanges(upper, name, spec, documented, evt, caseObj, assignees)
	if !fromAssignee {
		what += by(ev.Actor)
	}
	if upper == "ADD_CASE_COMMENT" {
		if a := evt.get("attachments"); a != nil && a.kind == kindArray && len(a.items) > 0 {
			what += " with " + plural(len(a.items), "attachment", "attachments")
		}
	}
	ev.Summary = what + note
	return nil
}

// actorIn reads the person under the first of keys that names one. A key that o has but that names no one (null, "", {}) is
// skipped: senders fill every field of their schema, so "caller": null
// beside a "createdBy" says nothing about who acted.
func actorIn(o *value, keys []string) *Actor {
	for _, k := range keys {
		if a := actorFrom(o.get(k)); a != nil {
			return a
		}
	}
	return nil
}

// createsObject reports whether the event adds or creates the object it
// carries, rather than changing one that already exists.
func createsObject(upper string) bool {
	return strings.HasPrefix(upper, "ADD_") || strings.HasPrefix(upper, "CREATE_") ||
		strings.HasSuffix(upper, "_CREATED") || upper == "PAYMENT_ADDED"
}

// looksLikeCase reports whether obj is the full case object. When the event
// data was not found separately (flat), the payload may itself be a payment
// or an order, which have a status too, so more evidence is needed.
func looksLikeCase(obj *value, flat bool) bool {
	if obj.get("casenumber") != nil {
		return true
	}
	n := 0
	for _, f := range caseFields {
		if obj.get(f) != nil {
			n++
		}
	}
	if flat {
		return n >= 2 && obj.get("status") != nil
	}
	return n >= 1
}

// caseOccurredAt picks the event time. Events that add or create something
// happened when that thing was created. Any other event changes something
// which already exists (the case, a comment, a payment, an order): it is
// dated by the change, that is, by the event object's change or update
// time, the envelope or the full case's last update. The changed object's
// createdAt, the case's createdAt and its referenceDate date what was
// changed and would place the change before events that happened in
// between; without a time of the change the receipt time is nearer.
func caseOccurredAt(root, payload, evt, caseObj *value, upper string, flat, creates bool) *time.Time {
	var pUpdated, pCreated *value
	if !flat { // when flat, evt is the payload and already searched
		pUpdated, pCreated = payload.get("updatedat"), payload.get("createdat")
	}
	envelope := []*value{root.get("timestamp")}
	if root != payload {
		// Without a "payload" wrapper, the root's createdAt is the case's
		// or the changed object's own (pCreated), not the envelope's.
		envelope = append(envelope, root.get("createdat"))
	}
	envelope = append(envelope, payload.get("timestamp"), payload.get("changedate"))
	var candidates []*value
	if !creates {
		// A payment is completed when it is paid.
		if upper == "PAYMENT_COMPLETED" {
			candidates = append(candidates, evt.get("paymentdate"))
		}
		candidates = append(candidates, evt.get("changedate"), evt.get("updatedat"))
		candidates = append(candidates, envelope...)
		return firstParsed(append(candidates, pUpdated))
	}
	candidates = append(candidates, evt.get("changedate"), evt.get("createdat"), evt.get("updatedat"))
	if upper == "CREATE_CASE" {
		candidates = append(candidates, caseObj.get("createdat"))
	}
	candidates = append(candidates, envelope...)
	candidates = append(candidates, pUpdated)
	if upper == "CREATE_CASE" {
		// Only the case's own times can date its creation; for anything
		// added to it later they are older than the event.
		candidates = append(candidates, pCreated, payload.get("referencedate"), caseObj.get("referencedate"))
	}
	return firstParsed(candidates)
}

// firstParsed returns the first of vs that parses as a time.
func firstParsed(vs []*value) *time.Time {
	for _, v := range vs {
		if t := parseTime(v); t != nil {
			return t
		}
	}
	return nil
}

// assigneesFrom reads [{assignee: {...}}, ...], [{...person...}] or a single
// person, returning display names and the first person.
func assigneesFrom(list *value) ([]string, *Actor) {
	if list == nil {
		return nil, nil
	}
	var people []*value
	switch list.kind {
	case kindArray:
		for i := range list.items {
			people = append(people, &list.items[i])
		}
	case kindObject:
		people = append(people, list)
	}
	var names []string
	var first *Actor
	for _, p := range people {
		if inner := p.obj("assignee", "user"); inner != nil {
			p = inner
		}
		a := actorFrom(p)
		if a == nil {
			continue
		}
		if first == nil {
			first = a
		}
		names = append(names, displayName(a))
	}
	return names, first
}

// caseChanges returns the changes an event records and its summary, split in
// what happened and a trailing note that goes after " by <actor>".
func caseChanges(upper, name string, spec caseEvent, documented bool, evt, caseObj *value, assignees []string) (changes []Change, summary, note string) {
	summary = humanize(name)
	if documented {
		summary = spec.summary
	}
	statusNote := func(s string) string {
		if s == "" {
			return ""
		}
		return " (status " + clip(s, summaryPartLen) + ")"
	}
	switch upper {
	case "CHANGE_CASE_STATUS":
		from, to := evt.str("oldstatus"), evt.str("newstatus", "status")
		if from != "" || to != "" {
			changes = append(changes, Change{Field: "status", From: from, To: to})
		}
		switch {
		case from != "" && to != "":
			summary += " " + clip(from, summaryPartLen) + " -> " + clip(to, summaryPartLen)
		case to != "":
			summary += " to " + clip(to, summaryPartLen)
		}
	case "ESCALATE_CASE", "DEESCALATE_CASE":
		on := upper == "ESCALATE_CASE"
		if b := evt.flag("isescalated"); b != nil {
			on = *b
		}
		changes = append(changes, boolChange("escalated", on))
	case "ARCHIVE_CASE", "REOPEN_CASE":
		on := upper == "ARCHIVE_CASE"
		if b := evt.flag("isarchived"); b != nil {
			on = *b
		}
		changes = append(changes, boolChange("archived", on))
	case "ORDER_CREATED", "ORDER_STATUS_CHANGED":
		if s := evt.str("status"); s != "" {
			changes = append(changes, Change{Field: "order.status", To: s})
			if upper == "ORDER_CREATED" {
				note = statusNote(s)
			} else {
				summary += " to " + clip(s, summaryPartLen)
			}
		}
	case "ORDER_TRACKING_ADDED":
		if s := evt.str("trackingid"); s != "" {
			changes = append(changes, Change{Field: "order.trackingId", To: s})
		}
	case "PAYMENT_ADDED", "PAYMENT_COMPLETED":
		if s := evt.str("status"); s != "" {
			changes = append(changes, Change{Field: "payment.status", To: s})
			note = statusNote(s)
		}
	case "CREATE_CASE":
		if s := caseObj.str("status"); s != "" {
			changes = append(changes, Change{Field: "status", To: s})
			note = statusNote(s)
		}
	case "ADD_CASE_ASSIGNEE", "REMOVE_CASE_ASSIGNEE":
		for _, n := range assignees {
			if upper == "ADD_CASE_ASSIGNEE" {
				changes = append(changes, Change{Field: "assignee", To: n})
			} else {
				changes = append(changes, Change{Field: "assignee", From: n})
			}
		}
		if len(assignees) > 1 {
			summary = strings.Replace(summary, "Assignee", "Assignees", 1)
		}
		if len(assignees) > 0 {
			summary += ": " + listNames(assignees)
		}
	}
	return changes, summary, note
}

func boolChange(field string, on bool) Change {
	if on {
		return Change{Field: field, From: "false", To: "true"}
	}
	return Change{Field: field, From: "true", To: "false"}
}

func listNames(names []string) string {
	const show = 3
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:show], ", ") + fmt.Sprintf(" and %d more", len(names)-show)
}
