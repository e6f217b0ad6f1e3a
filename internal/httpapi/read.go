package httpapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// Reads is what the read routes need of the store.
type Reads interface {
	timeline.Reader
	Event(ctx context.Context, id int64) (store.EventDetail, error)
	Blob(ctx context.Context, sha256 []byte) ([]byte, error)
	BlobEvents(ctx context.Context, sha256 []byte) ([]int64, error)
	RecordAccess(ctx context.Context, a store.Access) error
	AccessLog(ctx context.Context, afterID int64, keyName *string, limit int) ([]store.Access, error)
	Rejections(ctx context.Context, afterID int64, source *string, limit int) ([]store.KeptRejection, error)
	Rejection(ctx context.Context, id int64) (store.KeptRejection, error)
}

type readKey struct {
	hash [32]byte
	key  config.ReadKey
}

const readerKey = "casetrail.reader"

// requireReader authenticates a bearer read key and admits the given roles.
// Ingest credentials are not read keys and get 401 here.
func (s *server) requireReader(roles ...string) gin.HandlerFunc {
	keys := make([]readKey, len(s.Config.ReadKeys))
	for i, k := range s.Config.ReadKeys {
		keys[i] = readKey{hash: sha256.Sum256([]byte(k.Key)), key: k}
	}
	return func(c *gin.Context) {
		scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			c.Header("WWW-Authenticate", `Bearer realm="casetrail"`)
			writeProblem(c, http.StatusUnauthorized, "unauthorized", "a read key is required: Authorization: Bearer <key>")
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := -1
		for i := range keys { // every key, in constant time
			if subtle.ConstantTimeCompare(sum[:], keys[i].hash[:]) == 1 {
				match = i
			}
		}
		if match < 0 {
			writeProblem(c, http.StatusUnauthorized, "unauthorized", "unknown read key")
			return
		}
		k := keys[match].key
		c.Set(readerKey, k)
		if k.Role == config.RoleAuditor {
			defer s.recordAfter(c)
		}
		switch bad := nonText(c.Request); {
		case !slices.Contains(roles, k.Role):
			writeProblem(c, http.StatusForbidden, "forbidden", "the "+k.Role+" role may not use this route")
		case bad != "":
			writeProblem(c, http.StatusBadRequest, "invalid_parameter", bad+": is not UTF-8 text (or holds a NUL character)")
		case !wellFormedQuery(c.Request):
			writeProblem(c, http.StatusBadRequest, "invalid_parameter",
				"the query string is not well-formed: a '%' not followed by two hex digits (write % as %25), or a ';' (separate parameters with '&')")
		default:
			c.Next()
		}
	}
}

// recordAfter records an auditor's request once it is answered, unless its
// route recorded it already: every request of an auditor is recorded,
// refusals, answers without events and failures included. Routes that
// return events record before they answer (respond). A request that
// panicked, or whose answer gin could not render, is recorded as the 500
// recoverPanics answers it with; the panic goes on to be logged and
// answered.
func (s *server) recordAfter(c *gin.Context) {
	v := recover()
	if !c.GetBool(accessRecordedKey) {
		status := c.Writer.Status()
		if answersFailure(c, v != nil) {
			status = http.StatusInternalServerError
		}
		if err := s.recordAccess(c, status, nil); err != nil {
			s.Logger.Error("cannot record an auditor's request in the access log", "route", c.FullPath(), "status", status, "err", redact.Text(err.Error()))
		}
	}
	if v != nil {
		panic(v)
	}
}

const accessRecordedKey = "casetrail.access_recorded"

// wellFormedQuery reports whether every parameter of the query can be read:
// a parameter that cannot (an invalid escape such as "types=ORDER%", a ";")
// is left out of the parsed query, so its filter would be ignored.
func wellFormedQuery(r *http.Request) bool {
	_, err := url.ParseQuery(r.URL.RawQuery)
	return err == nil
}

// nonText names the first part of the request's path or query that is not
// text PostgreSQL can compare (invalid UTF-8, or NUL), or is "".
func nonText(r *http.Request) string {
	if !store.IsText(r.URL.Path) {
		return "path"
	}
	for name, vals := range r.URL.Query() {
		if !store.IsText(name) {
			return "query parameter name"
		}
		for _, v := range vals {
			if !store.IsText(v) {
				return name
			}
		}
	}
	return ""
}

func reader(c *gin.Context) config.ReadKey {
	k, _ := c.Get(readerKey)
	rk, _ := k.(config.ReadKey)
	return rk
}

// fullView: only auditors see PHI, and every one of their requests is
// recorded.
func fullView(c *gin.Context) bool { return reader(c).Role == config.RoleAuditor }

// respond sends a JSON answer. For an auditor the access is recorded first:
// if it cannot be recorded, the data is not sent. The answer is encoded
// before it is recorded: one that cannot be encoded is answered with a 500,
// which recordAfter then records, instead of a recorded 200 that the client
// never got.
func (s *server) respond(c *gin.Context, status int, body any, eventIDs []int64) {
	raw, err := json.Marshal(body)
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.send(c, status, "application/json; charset=utf-8", raw, eventIDs)
}

// send sends an encoded answer, recorded first for an auditor as respond
// does.
func (s *server) send(c *gin.Context, status int, contentType string, content []byte, eventIDs []int64) {
	if err := s.recordAccess(c, status, eventIDs); err != nil {
		s.writeError(c, err)
		return
	}
	c.Data(status, contentType, content)
}

func (s *server) recordAccess(c *gin.Context, status int, eventIDs []int64) error {
	k := reader(c)
	if k.Role != config.RoleAuditor {
		return nil
	}
	c.Set(accessRecordedKey, true)
	// As sent, but for a configured secret written into the request by
	// mistake: the access log is read by admins and auditors.
	params := map[string]any{}
	for name, vals := range c.Request.URL.Query() {
		texts := make([]string, len(vals))
		for i, v := range vals {
			texts[i] = s.credentials.Mask(store.Text(v))
		}
		params[s.credentials.Mask(store.Text(name))] = texts
	}
	for _, p := range c.Params {
		params[p.Key] = s.credentials.Mask(store.Text(p.Value))
	}
	raw, _ := json.Marshal(params)
	// Not cancelled with the request: an auditor who hangs up has still
	// made it.
	return s.Reads.RecordAccess(context.WithoutCancel(c.Request.Context()), store.Access{
		KeyName:  k.Name,
		Role:     k.Role,
		Method:   c.Request.Method,
		Route:    c.FullPath(),
		Path:     s.credentials.Mask(store.Text(c.Request.URL.Path)),
		Params:   raw,
		Status:   status,
		EventIDs: eventIDs,
	})
}

func eventIDs(events []timeline.Event) []int64 {
	ids := make([]int64, 0, len(events))
	for _, e := range events {
		id, _ := strconv.ParseInt(e.ID, 10, 64)
		ids = append(ids, id)
	}
	return ids
}

func (s *server) normalizeOptions() normalize.Options {
	return normalize.Options{DefaultCountryCode: s.Config.PhoneDefaultCountryCode}
}

func (s *server) handleCaseTimeline() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Param("caseId") == "" {
			s.writeError(c, &timeline.InvalidParam{Param: "caseId", Detail: "is empty: the path names no case"})
			return
		}
		l, err := timeline.Timeline(c.Request.Context(), s.Reads, timeline.TimelineRequest{
			CaseID: c.Param("caseId"), Query: c.Request.URL.Query(),
		}, s.normalizeOptions(), fullView(c))
		if err != nil {
			s.writeError(c, err)
			return
		}
		s.respond(c, http.StatusOK, l, eventIDs(l.Data))
	}
}

func (s *server) handleContactTimeline() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Param("contact") == "" {
			s.writeError(c, &timeline.InvalidParam{Param: "contact", Detail: "is empty: the path names no phone number or customer id"})
			return
		}
		l, err := timeline.Timeline(c.Request.Context(), s.Reads, timeline.TimelineRequest{
			Contact: c.Param("contact"), Query: c.Request.URL.Query(),
		}, s.normalizeOptions(), fullView(c))
		if err != nil {
			s.writeError(c, err)
			return
		}
		s.respond(c, http.StatusOK, l, eventIDs(l.Data))
	}
}

// handleFeed serves GET /v1/events: a JSON page, or with Accept:
// application/x-ndjson every event after the cursor, streamed.
func (s *server) handleFeed() gin.HandlerFunc {
	return func(c *gin.Context) {
		if prefers(c.GetHeader("Accept"), "application/x-ndjson") {
			s.streamFeed(c)
			return
		}
		l, err := timeline.FeedPage(c.Request.Context(), s.Reads, c.Request.URL.Query(), fullView(c))
		if err != nil {
			s.writeError(c, err)
			return
		}
		s.respond(c, http.StatusOK, l, eventIDs(l.Data))
	}
}

// prefers reports whether an Accept header asks for the media type offered
// rather than JSON: it names offered with a quality above 0 and no lower
// than what it gives application/json (or, when it does not name it,
// application/* or */*).
func prefers(accept, offered string) bool {
	q := map[string]float64{}
	for _, r := range strings.Split(accept, ",") {
		params := strings.Split(r, ";")
		mt := strings.ToLower(strings.TrimSpace(params[0]))
		quality := 1.0
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					quality = f
				}
			}
		}
		if _, seen := q[mt]; !seen {
			q[mt] = quality
		}
	}
	want, named := q[offered]
	json, ok := q["application/json"]
	if !ok {
		json = max(q["application/*"], q["*/*"])
	}
	return named && want > 0 && want >= json
}

func (s *server) streamFeed(c *gin.Context) {
	ctx := c.Request.Context()
	var ids []int64
	started := false
	w := bufio.NewWriterSize(chunkDeadlines{c.Writer, http.NewResponseController(c.Writer)}, 64<<10)
	enc := json.NewEncoder(w)
	next, more, err := timeline.FeedStream(ctx, s.Reads, c.Request.URL.Query(), fullView(c), func(e timeline.Event) error {
		if !started {
			c.Header("Content-Type", "application/x-ndjson")
			c.Status(http.StatusOK)
			started = true
		}
		if fullView(c) {
			id, _ := strconv.ParseInt(e.ID, 10, 64)
			ids = append(ids, id)
		}
		return enc.Encode(e)
	})
	if err != nil && !started {
		s.writeError(c, err)
		return
	}
	if !started {
		c.Header("Content-Type", "application/x-ndjson")
		c.Status(http.StatusOK)
	}
	// The trailer-like last line lets an exporter resume exactly here. A
	// stream cut short by an error says so, so that it does not look
	// complete.
	last := map[string]any{"page": timeline.Page{NextCursor: next, HasMore: more}}
	if err != nil {
		s.Logger.Error("feed stream ended early", "err", redact.Text(err.Error()))
		last["error"] = Problem{Type: problemType + "stream_ended_early", Title: "Stream ended early", Status: http.StatusServiceUnavailable,
			Detail: "the stream stopped before its end; resume from page.nextCursor"}
	}
	enc.Encode(last) //nolint:errcheck
	w.Flush()        //nolint:errcheck
	// A stream's content cannot wait for the log row (it is already sent),
	// so the row is written as soon as the stream ends; a failure is logged.
	if rerr := s.recordAccess(c, http.StatusOK, ids); rerr != nil {
		s.Logger.Error("recording an auditor's feed export", "err", redact.Text(rerr.Error()))
	}
}

// streamStall is how long a stream's reader may take to accept each chunk
// of it. The server's write timeout bounds a whole answer, and an export of
// the whole feed outlasts it.
const streamStall = 2 * time.Minute

// chunkDeadlines gives each chunk written to a stream a write deadline of
// its own.
type chunkDeadlines struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d chunkDeadlines) Write(p []byte) (int, error) {
	// A writer with no deadlines to set (a test's recorder) never times out.
	_ = d.rc.SetWriteDeadline(time.Now().Add(streamStall))
	return d.w.Write(p)
}

// EventDetail is GET /v1/events/{id}.
type EventDetail struct {
	timeline.Event
	Payload      json.RawMessage `json:"payload"`
	PayloadLossy bool            `json:"payloadLossy"`
	Reply        json.RawMessage `json:"reply,omitempty"`
	// Credential names the credential that accepted the request: its kind
	// and, for auditors, its fingerprint (a short unsalted hash, against
	// which a weak secret could be tried offline).
	Credential  string `json:"credential"`
	ContentType string `json:"contentType"`
	// BodySHA256 is the body's plain SHA-256, for auditors: with the rest
	// of the payload, it would let a reader test guesses at what is masked.
	BodySHA256 string `json:"bodySha256,omitempty"`
	// RawBody is the body exactly as received (base64), for auditors.
	RawBody *string `json:"rawBody,omitempty"`
}

func (s *server) handleEvent() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			writeProblem(c, http.StatusNotFound, "not_found", "no event with this id")
			return
		}
		e, err := s.Reads.Event(c.Request.Context(), id)
		if err != nil {
			s.writeError(c, err)
			return
		}
		full := fullView(c)
		d := EventDetail{
			Event: timeline.FromRow(store.EventRow{
				ID: e.ID, ReceivedAt: e.ReceivedAt, OccurredAt: e.OccurredAt, Source: e.Source, Kind: e.Kind,
				Type: e.Type, CaseID: e.CaseID, Phone: e.Phone, CustomerID: e.CustomerID,
				ConversationID: e.ConversationID, AgentID: e.AgentID, WorkItemID: e.WorkItemID, Queue: e.Queue,
				TimeInQueueMs: e.TimeInQueueMs, IsOutbound: e.IsOutbound, Actor: e.Actor, Changes: e.Changes,
				Summary: e.Summary, IdempotencyKey: e.IdempotencyKey, LogIndex: e.LogIndex,
				ExpungedAt: e.ExpungedAt, ExpungeReason: e.ExpungeReason,
			}, full),
			Payload:      e.Doc,
			PayloadLossy: e.DocLossy,
			Reply:        e.Reply,
			Credential:   credentialFor(e.Credential, full),
			ContentType:  e.ContentType,
		}
		if len(d.Payload) == 0 {
			d.Payload = json.RawMessage("null")
		}
		if full {
			d.BodySHA256 = hex.EncodeToString(e.BodySha256)
			raw := base64.StdEncoding.EncodeToString(e.Body)
			d.RawBody = &raw
		} else {
			d.Payload = redact.Document(d.Payload)
		}
		s.respond(c, http.StatusOK, d, []int64{e.ID})
	}
}

// credentialFor is a stored credential ("api-key:1a2b3c4d") as a reader
// sees it: auditors whole, others its kind only, since the fingerprint is a
// short unsalted hash against which a weak secret could be tried offline.
func credentialFor(credential string, full bool) string {
	if full {
		return credential
	}
	kind, _, _ := strings.Cut(credential, ":")
	return kind
}

// handleBlob returns attachment content, to auditors only. The access is
// recorded with the events whose documents refer to the attachment, so that
// the log says whose attachment was read. So is a request for one that is
// no longer stored (404): an expunged event's attachment asked for by its
// hash still names the event it was expunged from.
func (s *server) handleBlob() gin.HandlerFunc {
	return func(c *gin.Context) {
		sum, err := hex.DecodeString(c.Param("sha256"))
		if err != nil || len(sum) != sha256.Size {
			writeProblem(c, http.StatusNotFound, "not_found", "no blob with this SHA-256")
			return
		}
		ctx := c.Request.Context()
		content, err := s.Reads.Blob(ctx, sum)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeError(c, err)
			return
		}
		ids, idsErr := s.Reads.BlobEvents(ctx, sum)
		if idsErr != nil {
			s.writeError(c, idsErr)
			return
		}
		if err != nil { // not found
			if recErr := s.recordAccess(c, http.StatusNotFound, ids); recErr != nil {
				s.writeError(c, recErr)
				return
			}
			s.writeError(c, err)
			return
		}
		s.send(c, http.StatusOK, "application/octet-stream", content, ids)
	}
}

// AccessEntry is one row of GET /v1/access-log.
type AccessEntry struct {
	ID       string          `json:"id"`
	At       time.Time       `json:"at"`
	KeyName  string          `json:"keyName"`
	Role     string          `json:"role"`
	Method   string          `json:"method"`
	Route    string          `json:"route"`
	Path     string          `json:"path"`
	Params   json.RawMessage `json:"params"`
	Status   int             `json:"status"`
	EventIDs []string        `json:"eventIds"`
}

// AccessLogListing is the envelope of GET /v1/access-log.
type AccessLogListing struct {
	Data []AccessEntry `json:"data"`
	Page timeline.Page `json:"page"`
}

func (s *server) handleAccessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		rows, page, err := readIDPage(c, "keyName", s.Reads.AccessLog, func(a store.Access) int64 { return a.ID })
		if err != nil {
			s.writeError(c, err)
			return
		}
		out := AccessLogListing{Data: make([]AccessEntry, 0, len(rows)), Page: page}
		for _, r := range rows {
			ids := make([]string, len(r.EventIDs))
			for i, id := range r.EventIDs {
				ids[i] = strconv.FormatInt(id, 10)
			}
			path, params := maskAccess(r.Route, r.Path, r.Params)
			out.Data = append(out.Data, AccessEntry{ID: strconv.FormatInt(r.ID, 10), At: r.At.UTC(), KeyName: r.KeyName,
				Role: r.Role, Method: r.Method, Route: r.Route, Path: path, Params: params, Status: r.Status, EventIDs: ids})
		}
		c.JSON(http.StatusOK, out)
	}
}

// readIDPage reads the page a request asks for of a listing paged by id:
// its cursor and limit, the filter named filter when given, and the rows
// after the cursor.
func readIDPage[T any](c *gin.Context, filter string, read func(ctx context.Context, afterID int64, filter *string, limit int) ([]T, error), id func(T) int64) ([]T, timeline.Page, error) {
	q := c.Request.URL.Query()
	after, limit, err := idPage(q, 0)
	if err != nil {
		return nil, timeline.Page{}, err
	}
	var value *string
	if v := q.Get(filter); v != "" {
		value = &v
	}
	rows, err := read(c.Request.Context(), after, value, limit+1)
	if err != nil {
		return nil, timeline.Page{}, err
	}
	rows, page := idPageOf(rows, limit, id)
	return rows, page, nil
}

// idPageOf cuts rows, read with a limit of one more than limit, to a page
// whose cursor is the id of its last row.
func idPageOf[T any](rows []T, limit int, id func(T) int64) ([]T, timeline.Page) {
	if len(rows) <= limit {
		return rows, timeline.Page{}
	}
	rows = rows[:limit]
	next := strconv.FormatInt(id(rows[len(rows)-1]), 10)
	return rows, timeline.Page{NextCursor: &next, HasMore: true}
}

// idPage reads limit and cursor for a listing in id order, whose cursor is
// the last id of the page before; without a cursor the listing starts after
// the id first.
func idPage(q url.Values, first int64) (after int64, limit int, err error) {
	limit = timeline.DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > timeline.MaxLimit {
			return 0, 0, &timeline.InvalidParam{Param: "limit", Detail: fmt.Sprintf("must be a whole number from 1 to %d", timeline.MaxLimit)}
		}
		limit = n
	}
	after = first
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, &timeline.InvalidParam{Param: "cursor", Detail: "is not a cursor this server issued"}
		}
		after = n
	}
	return after, limit, nil
}

// maskAccess is a recorded request as admins, a redacted role, may read it:
// the contact of a contact timeline masked as analysts see it, and phone
// numbers and e-mail addresses masked in the values of parameters the API
// does not define (a client may send any). The route's other parameters
// (case and event ids, sizes, filters) stay as sent, so that an admin can
// still tell what an auditor read.
func maskAccess(route, path string, params json.RawMessage) (string, json.RawMessage) {
	var p map[string]any
	if route == "" || json.Unmarshal(params, &p) != nil {
		return redact.Text(path), redact.TextIn(params)
	}
	path = maskedPath(route, func(name string) string { v, _ := p[name].(string); return v })
	for k, v := range p {
		switch {
		case k == "contact":
			if s, ok := v.(string); ok {
				p[k] = redact.Phone(s)
			}
		case strings.Contains(route+"/", "/:"+k+"/") || definedParams[k]:
		default:
			p[k] = redact.TextValue(v)
		}
	}
	masked, err := json.Marshal(p)
	if err != nil {
		return path, redact.TextIn(params)
	}
	return path, masked
}

// definedParams are the query parameters of the read routes
// (api/openapi.yaml); none of them holds a phone number or an e-mail.
var definedParams = map[string]bool{
	"from": true, "to": true, "tz": true, "interval": true, "groupBy": true, "queue": true, "buckets": true,
	"shortAbandonSec": true, "callbackWindow": true, "status": true, "source": true, "types": true,
	"order": true, "limit": true, "cursor": true, "keyName": true, "event": true, "size": true,
	"hourOfDay": true, "dayOfWeek": true,
}
