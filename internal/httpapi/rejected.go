package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// Rejection is a request casetrail refused and kept (rejected_requests),
// in GET /v1/rejected and GET /v1/rejected/{id}.
type Rejection struct {
	ID         string    `json:"id"`
	ReceivedAt time.Time `json:"receivedAt"`
	Source     string    `json:"source"`
	// EventType is the type the request named, where it named one.
	EventType string `json:"eventType"`
	Status    int    `json:"status"` // the answer it got
	Cause     string `json:"cause"`
	Detail    string `json:"detail"`
	// Credential is as GET /v1/events/{id} shows it: its kind, and for
	// auditors its fingerprint.
	Credential    string `json:"credential"`
	ContentType   string `json:"contentType"`
	BodySize      int64  `json:"bodySize"`
	BodyTruncated bool   `json:"bodyTruncated"`
	// BodySHA256 and RawBody are the body as kept, for auditors, and only
	// in GET /v1/rejected/{id}.
	BodySHA256 string  `json:"bodySha256,omitempty"`
	RawBody    *string `json:"rawBody,omitempty"`
	// Expunged: its body, detail and event type were erased (casetrail
	// expunge --rejected); BodySHA256 is then the erased body's.
	Expunged *timeline.Expunged `json:"expunged,omitempty"`
}

// RejectionListing is the envelope of GET /v1/rejected.
type RejectionListing struct {
	Data []Rejection   `json:"data"`
	Page timeline.Page `json:"page"`
}

// rejection is r as the reader may see it. Bodies are raw bytes that
// cannot be redacted, so only auditors get them; the event type (a path
// segment the sender chose) and the detail may quote anything, so other
// readers get them with phone numbers and e-mail addresses masked.
func rejection(r store.KeptRejection, full bool) Rejection {
	out := Rejection{ID: strconv.FormatInt(r.ID, 10), ReceivedAt: r.ReceivedAt.UTC(), Source: r.Source,
		EventType: r.EventType, Status: r.Status, Cause: r.Cause, Detail: r.Detail,
		Credential: credentialFor(r.Credential, full), ContentType: r.ContentType, BodySize: r.BodySize,
		BodyTruncated: r.BodyTruncated}
	if r.Expunged != nil {
		out.Expunged = &timeline.Expunged{At: r.Expunged.At.UTC(), Reason: r.Expunged.Reason}
	}
	if !full {
		out.EventType = redact.Text(out.EventType)
		out.Detail = redact.Text(out.Detail)
		if out.Expunged != nil {
			out.Expunged.Reason = redact.Text(out.Expunged.Reason)
		}
		return out
	}
	if r.Expunged != nil {
		out.BodySHA256 = hex.EncodeToString(r.BodySHA256)
		return out
	}
	if r.BodySHA256 != nil {
		out.BodySHA256 = hex.EncodeToString(r.BodySHA256)
		raw := base64.StdEncoding.EncodeToString(r.Body)
		out.RawBody = &raw
	}
	return out
}

// handleRejections lists the kept rejected requests without their bodies,
// in the order they were kept, of one source with ?source=.
func (s *server) handleRejections() gin.HandlerFunc {
	return func(c *gin.Context) {
		rows, page, err := readIDPage(c, "source", s.Reads.Rejections, func(r store.KeptRejection) int64 { return r.ID })
		if err != nil {
			s.writeError(c, err)
			return
		}
		out := RejectionListing{Data: make([]Rejection, 0, len(rows)), Page: page}
		full := fullView(c)
		for _, r := range rows {
			out.Data = append(out.Data, rejection(r, full))
		}
		s.respond(c, http.StatusOK, out, nil)
	}
}

// handleRejection answers one kept rejected request; auditors also get its
// body as kept.
func (s *server) handleRejection() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			writeProblem(c, http.StatusNotFound, "not_found", "no rejected request with this id")
			return
		}
		r, err := s.Reads.Rejection(c.Request.Context(), id)
		if err != nil {
			s.writeError(c, err)
			return
		}
		s.respond(c, http.StatusOK, rejection(r, fullView(c)), nil)
	}
}
