// Package ingest takes one webhook request from any configured source,
// authenticates it on its raw bytes, decodes and normalises it, and hands it
// to the store's write path. What it refuses after authentication is kept as
// a rejected request, so nothing a sender sent is lost.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/spool"
	"github.com/casetrail/casetrail/internal/store"
)

// Writer is the store's one write path: a batch in, one result per event,
// returned only after the batch is committed.
type Writer interface {
	Ingest(ctx context.Context, events []store.NewEvent) ([]store.IngestResult, error)
}

// RejectKeeper keeps refused requests, and tells the type of a stored
// event: an explicit idempotency key that is repeated is a retry only when
// the event that holds it is of the same type.
type RejectKeeper interface {
	Reject(ctx context.Context, r store.Rejected) (int64, error)
	EventType(ctx context.Context, id int64) (string, error)
}

// Error is a refusal with the HTTP status and a machine-readable cause.
type Error struct {
	Status int
	Cause  string // e.g. invalid_json, unknown_event
	Detail string
	// RejectedID is the rejected_requests row that keeps the request, or 0.
	RejectedID int64
}

func (e *Error) Error() string { return e.Cause + ": " + e.Detail }

// ErrUnavailable means the event could not be committed: the sender must
// retry.
var ErrUnavailable = store.ErrUnavailable

// Request is one incoming webhook.
type Request struct {
	Source      string
	PathEvent   string
	Header      http.Header
	Body        []byte
	ContentType string // the Content-Type header as sent, parameters included
	ReceivedAt  time.Time
	// TooLarge: Body holds only the first bytes of a body over the limit;
	// BodySize is how much was read.
	TooLarge bool
	BodySize int64
}

// Reply is what the sender is told.
type Reply struct {
	Status    int
	Body      []byte
	ID        int64
	Duplicate bool
	Type      string
	// Spooled: the database could not take the event in time; it waits in
	// the local spool and has no id yet.
	Spooled bool
}

type source struct {
	cfg  config.Source
	auth *authenticator
}

// Service handles ingestion for every configured source.
type Service struct {
	sources map[string]*source
	writer  Writer
	rejects RejectKeeper
	opts    normalize.Options
	metrics *Metrics
	// secrets are masked in what is kept of a refusal, and in the names a
	// refusal's detail repeats: a sender may put one in its URL by mistake.
	secrets config.Secrets
	// spool keeps before-* hooks the database cannot take in time; nil:
	// they get 503 like everything else.
	spool     *spool.Spool
	spoolWait time.Duration
	spoolNew  bool // new before-* hooks may go to the spool
}

// SpoolBeforeHooks makes before-* hooks that cannot be committed within
// wait go to sp instead, answered with their no-change reply: their sender
// blocks an agent until it hears back.
func (s *Service) SpoolBeforeHooks(sp *spool.Spool, wait time.Duration) {
	s.spool, s.spoolWait, s.spoolNew = sp, wait, true
}

// DrainOnly gives the service a spool to drain (DrainSpool) that new
// before-* hooks do not go to: one left by a server that was configured to
// spool, whose events were acknowledged and must still be stored.
func (s *Service) DrainOnly(sp *spool.Spool) {
	s.spool, s.spoolNew = sp, false
}

// DrainSpool commits the spooled events, in order; a repeat of one already
// stored is recognised by its idempotency key and stores nothing.
func (s *Service) DrainSpool(ctx context.Context) (int, error) {
	if s.spool == nil {
		return 0, nil
	}
	return s.spool.Drain(ctx, s.storeSpooled)
}

// storeSpooled commits spooled events. One the database refuses as such is
// kept as a rejected request, on its own, so that it cannot hold up the
// rest of the spool.
func (s *Service) storeSpooled(ctx context.Context, events []store.NewEvent) error {
	results, err := s.writer.Ingest(ctx, events)
	if errors.Is(err, store.ErrUnstorable) {
		if len(events) == 1 {
			return s.rejectSpooled(ctx, events[0], unstorable(err))
		}
		for i := range events {
			if err := s.storeSpooled(ctx, events[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	for i, r := range results {
		why := ""
		if errors.Is(r.Err, store.ErrConflict) {
			why = "spooled during an outage; the key was taken meanwhile"
		} else if why, err = s.anotherRequest(ctx, r, events[i]); err != nil {
			return err
		}
		if why != "" {
			if err := s.rejectSpooled(ctx, events[i], &Error{Status: http.StatusConflict, Cause: "idempotency_conflict", Detail: why}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) rejectSpooled(ctx context.Context, e store.NewEvent, why *Error) error {
	_, err := s.rejects.Reject(ctx, store.Rejected{ReceivedAt: e.ReceivedAt, Source: e.Source, EventType: e.Type,
		Status: why.Status, Cause: why.Cause, Detail: why.Detail,
		Credential: e.Credential, ContentType: e.ContentType, Body: e.Body, BodySize: int64(len(e.Body))})
	return err
}

// Spooled is the number of events waiting in the spool.
// Spools reports whether new before-* hooks go to the spool when the
// database cannot take them (before_hooks_on_outage: spool).
func (s *Service) Spools() bool { return s != nil && s.spool != nil && s.spoolNew }

func (s *Service) Spooled() int {
	if s == nil || s.spool == nil {
		return 0
	}
	return s.spool.Len()
}

// NewService builds the service from the validated configuration.
func NewService(cfg *config.Config, w Writer, rejects RejectKeeper, m *Metrics) *Service {
	s := &Service{
		sources: map[string]*source{},
		writer:  w,
		rejects: rejects,
		opts:    normalize.Options{DefaultCountryCode: cfg.PhoneDefaultCountryCode},
		metrics: m,
		secrets: cfg.Secrets(),
	}
	for _, src := range cfg.Sources {
		s.sources[src.Name] = &source{cfg: src, auth: newAuthenticator(src)}
	}
	return s
}

// Handle processes one request. It returns a Reply for every stored event
// (new or duplicate), an *Error for a refusal, or an error wrapping
// ErrUnavailable when the store could not commit.
func (s *Service) Handle(ctx context.Context, r Request) (rep Reply, err error) {
	start := time.Now()
	src, ok := s.sources[r.Source]
	label := r.Source
	if !ok {
		label = "unknown"
	}
	defer func() { s.metrics.observe(label, rep, err, time.Since(start)) }()
	if !ok {
		return Reply{}, &Error{Status: http.StatusNotFound, Cause: "unknown_source", Detail: fmt.Sprintf("no source named %q is configured", s.secrets.Mask(r.Source))}
	}

	if r.TooLarge {
		return Reply{}, s.refuseTooLarge(ctx, src, r)
	}
	cred, why, ok := src.auth.verify(r.Header, r.Body)
	if !ok {
		return Reply{}, &Error{Status: http.StatusUnauthorized, Cause: "unauthorized", Detail: why}
	}

	ev, err := s.decode(src, r)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Reply{}, s.keep(ctx, r, cred, r.PathEvent, e)
		}
		return Reply{}, err
	}
	ev.Credential = cred

	if ev.Reply != nil && s.spoolNew {
		res, spooled, err := s.commitOrSpool(ctx, ev)
		if errors.Is(err, store.ErrUnstorable) {
			return Reply{}, s.keep(ctx, r, cred, ev.Type, unstorable(err))
		}
		if err != nil {
			return Reply{}, err
		}
		if spooled {
			return Reply{Status: http.StatusOK, Body: ev.Reply, Type: ev.Type, Spooled: true}, nil
		}
		return s.reply(ctx, r, cred, ev, res)
	}
	results, err := s.writer.Ingest(ctx, []store.NewEvent{ev})
	if errors.Is(err, store.ErrUnstorable) {
		return Reply{}, s.keep(ctx, r, cred, ev.Type, unstorable(err))
	}
	if err != nil {
		return Reply{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return s.reply(ctx, r, cred, ev, results[0])
}

// unstorable is the refusal of an event the database refused as such: it
// would refuse it again however often the sender retried, so the sender is
// told with a 4xx and the request is kept.
func unstorable(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Cause: "unstorable_event", Detail: err.Error()}
}

// commitOrSpool commits a before-* hook, or spools it when the commit fails
// or takes longer than the spool wait. A commit still under way may land
// later; draining the spool then finds a duplicate.
func (s *Service) commitOrSpool(ctx context.Context, ev store.NewEvent) (store.IngestResult, bool, error) {
	type outcome struct {
		res []store.IngestResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.writer.Ingest(context.WithoutCancel(ctx), []store.NewEvent{ev})
		done <- outcome{res, err}
	}()
	timer := time.NewTimer(s.spoolWait)
	defer timer.Stop()
	select {
	case o := <-done:
		if o.err == nil {
			return o.res[0], false, nil
		}
		if errors.Is(o.err, store.ErrUnstorable) {
			return store.IngestResult{}, false, o.err // the spool could never drain it
		}
	case <-timer.C:
	}
	if err := s.spool.Append(ev); err != nil {
		return store.IngestResult{}, false, fmt.Errorf("%w: spooling a before-hook: %v", ErrUnavailable, err)
	}
	return store.IngestResult{}, true, nil
}

// reply answers a committed (or repeated, or conflicting) event.
func (s *Service) reply(ctx context.Context, r Request, cred string, ev store.NewEvent, res store.IngestResult) (Reply, error) {
	if errors.Is(res.Err, store.ErrConflict) {
		return Reply{}, s.keep(ctx, r, cred, ev.Type, &Error{Status: http.StatusConflict, Cause: "idempotency_conflict",
			Detail: fmt.Sprintf("idempotency key was already used for event %d with a different body", res.ID)})
	}
	switch why, err := s.anotherRequest(ctx, res, ev); {
	case err != nil:
		return Reply{}, fmt.Errorf("%w: checking the event that holds the key: %v", ErrUnavailable, err)
	case why != "":
		return Reply{}, s.keep(ctx, r, cred, ev.Type, &Error{Status: http.StatusConflict, Cause: "idempotency_conflict", Detail: why})
	}
	rep := Reply{Status: http.StatusOK, ID: res.ID, Duplicate: res.Duplicate, Type: ev.Type}
	if ev.Reply != nil {
		rep.Body = ev.Reply
	} else {
		rep.Body, _ = json.Marshal(struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}{strconv.FormatInt(res.ID, 10), res.Duplicate})
	}
	return rep, nil
}

// anotherRequest says why ev, answered as a repeat of res's event, is
// another request under a key already taken, or "" when it is a retry. Only
// a sender's own key needs the check (a derived key names the event type):
// the same body sent to another hook under that key is another request, and
// so is one whose key's event is missing from the store (verify names it),
// since nothing can be stored under the key.
func (s *Service) anotherRequest(ctx context.Context, res store.IngestResult, ev store.NewEvent) (string, error) {
	if !res.Duplicate || !ev.ExplicitKey {
		return "", nil
	}
	held, err := s.rejects.EventType(ctx, res.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Sprintf("idempotency key is held by event %d, which the store does not hold", res.ID), nil
	case err != nil:
		return "", err
	case held != ev.Type:
		return fmt.Sprintf("idempotency key was already used for event %d, a %s event, not %s", res.ID, held, ev.Type), nil
	}
	return "", nil
}

// decode authenticates nothing; it turns the body into a NewEvent or an
// *Error naming why it cannot be one.
func (s *Service) decode(src *source, r Request) (store.NewEvent, error) {
	kind := normalize.Kind(src.cfg.Kind)
	if kind != normalize.CaseUpdates && r.PathEvent == "" {
		return store.NewEvent{}, &Error{Status: http.StatusNotFound, Cause: "missing_event",
			Detail: fmt.Sprintf("a %s source takes the event in the path: /v1/ingest/%s/{event}", kind, src.cfg.Name)}
	}
	if r.PathEvent != "" && s.secrets.Names(r.PathEvent) {
		// A credential written into the URL by mistake: as a case update's
		// event type (its fallback when the body names none) it would be
		// stored in the event, its leaf and every reader's view of it.
		return store.NewEvent{}, &Error{Status: http.StatusNotFound, Cause: "unknown_event",
			Detail: "the path names a configured credential, not an event: send credentials in their header, never in the URL"}
	}
	if coding, ok := contentCoding(r.Header); !ok {
		return store.NewEvent{}, &Error{Status: http.StatusUnsupportedMediaType, Cause: "unsupported_content_encoding",
			Detail: fmt.Sprintf("Content-Encoding %q is not supported: send the body uncompressed", coding)}
	}
	key, explicit := r.Header.Get("Idempotency-Key"), true
	if key == "" {
		key = r.Header.Get("webhook-id")
	}
	// Characters, as the API documents it; at most 2 KiB of UTF-8, which the
	// key's index holds.
	if utf8.RuneCountInString(key) > 512 {
		return store.NewEvent{}, &Error{Status: http.StatusBadRequest, Cause: "invalid_idempotency_key", Detail: "idempotency key is longer than 512 characters"}
	}
	if !store.IsText(key) {
		return store.NewEvent{}, &Error{Status: http.StatusBadRequest, Cause: "invalid_idempotency_key", Detail: "idempotency key is not UTF-8 text (or holds a NUL character)"}
	}

	text, lossy := bodyText(r.ContentType, r.Body)
	n, err := normalize.Decode(kind, r.PathEvent, text, s.opts)
	switch {
	case errors.Is(err, normalize.ErrNotJSON):
		return store.NewEvent{}, &Error{Status: http.StatusBadRequest, Cause: "invalid_json", Detail: err.Error()}
	case errors.Is(err, normalize.ErrMissingEventType):
		return store.NewEvent{}, &Error{Status: http.StatusBadRequest, Cause: "missing_event_type", Detail: err.Error()}
	case errors.Is(err, normalize.ErrUnknownEvent):
		return store.NewEvent{}, &Error{Status: http.StatusNotFound, Cause: "unknown_event",
			Detail: fmt.Sprintf("%q is not a %s event (known: %v)", s.secrets.Mask(r.PathEvent), kind, normalize.KnownEvents(kind))}
	case err != nil:
		return store.NewEvent{}, &Error{Status: http.StatusBadRequest, Cause: "invalid_event", Detail: err.Error()}
	}

	sum := sha256.Sum256(r.Body)
	if key == "" {
		// No id upstream: a repeat of the same body for the same event is the
		// same delivery.
		key, explicit = store.DerivedKey(n.Type, sum), false
	}
	ev := store.NewEvent{
		ReceivedAt:     r.ReceivedAt,
		OccurredAt:     r.ReceivedAt,
		Source:         src.cfg.Name,
		Kind:           string(kind),
		Type:           n.Type,
		IdempotencyKey: key,
		ExplicitKey:    explicit,
		CaseID:         n.CaseID,
		Phone:          n.Phone,
		CustomerID:     n.CustomerID,
		ConversationID: n.ConversationID,
		AgentID:        n.AgentID,
		WorkItemID:     n.WorkItemID,
		Queue:          n.Queue,
		TimeInQueueMs:  n.TimeInQueueMs,
		IsOutbound:     n.IsOutbound,
		Summary:        n.Summary,
		ContentType:    store.Text(r.ContentType),
		Body:           r.Body,
		BodySHA256:     sum,
		Doc:            n.Doc,
		DocLossy:       n.Lossy || lossy,
		Reply:          n.Reply,
	}
	if n.OccurredAt != nil {
		ev.OccurredAt = n.OccurredAt.UTC()
	}
	if n.Actor != nil {
		ev.Actor, _ = json.Marshal(actor{ID: n.Actor.ID, Name: n.Actor.Name, Email: n.Actor.Email})
	}
	if len(n.Changes) > 0 {
		cs := make([]change, len(n.Changes))
		for i, c := range n.Changes {
			cs[i] = change{Field: c.Field, From: c.From, To: c.To}
		}
		ev.Changes, _ = json.Marshal(cs)
	}
	for _, b := range n.Blobs {
		ev.Blobs = append(ev.Blobs, store.Blob{SHA256: b.SHA256, Content: b.Content})
	}
	return ev, nil
}

// contentCoding returns the first content coding other than identity that h
// names, and false, or true when the body is sent as it is. The body is
// stored and its signature checked as sent, so a compressed body is refused
// by name rather than read as JSON that is not there.
func contentCoding(h http.Header) (string, bool) {
	for _, v := range h["Content-Encoding"] {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c, false
			}
		}
	}
	return "", true
}

// actor and change are stored in the shape the read API shows them.
type actor struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

type change struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// refuseTooLarge answers 413. The part that was read is kept when the
// credential can be checked without the whole body (an API key or header
// secret); a signature over a body that was not read cannot be checked, so
// then only the fact of the refusal is kept, with no content.
func (s *Service) refuseTooLarge(ctx context.Context, src *source, r Request) error {
	e := &Error{Status: http.StatusRequestEntityTooLarge, Cause: "body_too_large",
		Detail: fmt.Sprintf("the body is over the limit of this server (%d bytes read)", r.BodySize)}
	if src.auth.needsBody(r.Header) {
		r.Body = nil
		return s.keep(ctx, r, "unverified", r.PathEvent, e)
	}
	cred, why, ok := src.auth.verify(r.Header, r.Body)
	if !ok {
		return &Error{Status: http.StatusUnauthorized, Cause: "unauthorized", Detail: why}
	}
	return s.keep(ctx, r, cred, r.PathEvent, e)
}

// keep stores the refused request, of the event type named by its path or,
// once its body is read, by the event. If even that fails, the sender is told
// to retry (503) rather than given a 4xx that would make it give up on a
// request nobody kept.
func (s *Service) keep(ctx context.Context, r Request, cred, eventType string, e *Error) error {
	id, err := s.rejects.Reject(ctx, store.Rejected{
		ReceivedAt:    r.ReceivedAt,
		Source:        r.Source,
		EventType:     s.secrets.Mask(eventType),
		Status:        e.Status,
		Cause:         e.Cause,
		Detail:        e.Detail,
		Credential:    cred,
		ContentType:   r.ContentType,
		Body:          r.Body,
		BodySize:      max(r.BodySize, int64(len(r.Body))),
		BodyTruncated: r.TooLarge,
	})
	if err != nil {
		return fmt.Errorf("%w: keeping a rejected request: %v", ErrUnavailable, err)
	}
	e.RejectedID = id
	return e
}
