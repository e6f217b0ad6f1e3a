// Package normalize turns raw webhook bodies of the three source kinds into normalised events.
//
// It owns everything casetrail knows about the senders' payloads: which
// events exist, where each platform puts case ids, times, phone numbers and
// people, how the prose-only contact-center fields are spelled in practice,
// and how a body becomes a copy that PostgreSQL jsonb accepts. It is pure:
// no I/O, no clock, no shared state, so the ingest path can call it from any
// goroutine and tests can pin every rule.
package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the family of a source; it decides how a body is read.
type Kind string

// The source kinds casetrail receives.
const (
	CaseUpdates    Kind = "case-updates"
	ServiceActions Kind = "service-actions"
	ServiceHooks   Kind = "service-hooks"
)

// Options tune lenient parsing.
type Options struct {
	// DefaultCountryCode is the calling code (digits, e.g. "44" or "1")
	// applied to phone numbers written without an international prefix.
	// Empty: such numbers are accepted only when they already look
	// international (see NormalizePhone).
	DefaultCountryCode string
}

// Validate reports a setting that NormalizePhone would ignore, so that
// configuration can fail at start-up instead of silently not normalising.
func (o Options) Validate() error {
	cc := strings.TrimPrefix(strings.TrimSpace(o.DefaultCountryCode), "+")
	if o.DefaultCountryCode != "" && !validCountryCode(cc) {
		return fmt.Errorf("default country code %q is not a calling code of 1 to 3 digits", clip(o.DefaultCountryCode, 16))
	}
	return nil
}

// Actor is who performed the action, where the payload names one.
type Actor struct {
	ID, Name, Email string
}

// Change is one field that the event changed, e.g. status Open -> Resolved.
// From or To is empty when the payload does not say.
type Change struct {
	Field, From, To string
}

// Blob is attachment content moved out of the indexed JSON.
type Blob struct {
	SHA256  [32]byte
	Content []byte // decoded bytes
}

// Event is what the store needs from one request body. All strings are valid
// UTF-8 without NUL, and identifiers are at most 200 bytes, so they fit text
// columns and btree indexes as they are.
type Event struct {
	Type           string     // case-updates: the body's "event"; other kinds: the canonical path event
	OccurredAt     *time.Time // from the payload, UTC; nil when none found (the caller then uses receipt time)
	CaseID         string     // "" when not found
	Phone          string     // E.164 ("+447700900123") or ""
	CustomerID     string
	ConversationID string
	AgentID        string
	WorkItemID     string
	Queue          string
	TimeInQueueMs  *int64 // abandoned conversations
	IsOutbound     *bool  // work items
	Actor          *Actor
	Changes        []Change // status changes, escalation, archive/reopen, order status, assignees...
	Summary        string   // one line for humans; never PHI content
	// Doc is the indexed JSON copy for jsonb: compact, valid UTF-8, no
	// \u0000 (replaced by U+FFFD), attachment contents replaced by
	// {"sha256":"<hex>","size":N}. Always set when err is nil.
	Doc   []byte
	Lossy bool   // Doc differs from the body by more than blob replacement
	Blobs []Blob // attachment contents moved out of Doc, one per distinct SHA-256
	// Reply is the exact JSON to answer a before-* service action with: a
	// reply that changes nothing. Nil for every other event.
	Reply []byte
}

// Errors returned by Decode, possibly wrapped with detail. Details name
// offsets and lengths, never body content.
var (
	ErrNotJSON          = errors.New("body is not valid JSON")
	ErrMissingEventType = errors.New(`body has no "event" field naming the event type`) // case-updates only
	ErrUnknownEvent     = errors.New("unknown event for this source kind")              // path event not in KnownEvents
	ErrUnknownKind      = errors.New("unknown source kind")
)

// Event names per kind, as they appear in ingest URLs. Case updates accept
// any name, so they have no list.
var (
	serviceActionEvents = []string{
		"before-resolve", "before-book-appointment", "after-book-appointment",
		"before-check-in", "after-check-in", "before-queue-up", "after-queue-up",
		"after-resolve", "after-close", "after-start-work",
	}
	serviceHookEvents = []string{
		"abandoned-conversation", "outbound-call", "workitem-closed",
	}
)

// KnownEvents lists the path events a kind accepts; nil for CaseUpdates,
// which accepts any event name. The slice is the caller's to keep.
func KnownEvents(kind Kind) []string {
	switch kind {
	case ServiceActions:
		return append([]string(nil), serviceActionEvents...)
	case ServiceHooks:
		return append([]string(nil), serviceHookEvents...)
	}
	return nil
}

// canonicalEvent maps a path event to its name in KnownEvents. Matching
// ignores case, '-' and '_' because the names are typed by hand into the
// senders' portals ("WorkItemClosed", "workitem_closed").
func canonicalEvent(kind Kind, pathEvent string) (string, bool) {
	var names []string
	switch kind {
	case ServiceActions:
		names = serviceActionEvents
	case ServiceHooks:
		names = serviceHookEvents
	default:
		return "", false
	}
	folded := FoldKey(strings.TrimSpace(pathEvent))
	for _, n := range names {
		if keyMatches(n, folded) {
			return n, true
		}
	}
	return "", false
}

// IsBeforeHook reports whether the event is a synchronous before-* service
// action, which must be answered with Event.Reply.
func IsBeforeHook(kind Kind, event string) bool {
	name, ok := canonicalEvent(kind, event)
	return ok && kind == ServiceActions && strings.HasPrefix(name, "before-")
}

// maxEventNameLen bounds case-update event names; they are stored, indexed
// and filtered on, and upstream names are a few dozen bytes.
const maxEventNameLen = 128

// Decode reads one request body. pathEvent is the {event} path segment (""
// when absent): the event type of service actions and service hooks, and a
// fallback for case updates whose body lacks "event". It never panics; on
// error the Event is zero and errors.Is matches one of the Err values.
func Decode(kind Kind, pathEvent string, body []byte, opts Options) (Event, error) {
	var typ string
	switch kind {
	case CaseUpdates:
	case ServiceActions, ServiceHooks:
		name, ok := canonicalEvent(kind, pathEvent)
		if !ok {
			if strings.TrimSpace(pathEvent) == "" {
				return Event{}, fmt.Errorf("%w: no event in the path", ErrUnknownEvent)
			}
			return Event{}, fmt.Errorf("%w: %q", ErrUnknownEvent, clip(pathEvent, 64))
		}
		typ = name
	default:
		return Event{}, fmt.Errorf("%w: %q", ErrUnknownKind, clip(string(kind), 64))
	}

	root, lossy, err := parseJSON(body)
	if err != nil {
		return Event{}, err
	}

	ev := Event{Type: typ}
	switch kind {
	case CaseUpdates:
		if err := decodeCaseUpdate(&ev, &root, pathEvent, opts); err != nil {
			return Event{}, err
		}
	case ServiceActions:
		decodeServiceAction(&ev, &root, opts)
	case ServiceHooks:
		decodeServiceHook(&ev, &root, opts)
	}

	ev.Blobs = extractBlobs(&root)
	ev.Doc = root.appendJSON(make([]byte, 0, len(body)))
	ev.Lossy = lossy
	return ev, nil
}
