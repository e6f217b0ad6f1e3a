package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/ingest"
	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// RejectedID names the kept copy of a refused ingest request.
	RejectedID string `json:"rejectedId,omitempty"`
}

const problemType = "urn:casetrail:problem:"

// retryAfterSeconds is what a sender is asked to wait when the database
// cannot take its event.
const retryAfterSeconds = "5"

func newProblem(status int, cause, detail string) Problem {
	return Problem{Type: problemType + cause, Title: titleOf(cause), Status: status, Detail: detail}
}

func writeProblem(c *gin.Context, status int, cause, detail string) {
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(status, newProblem(status, cause, detail))
}

func titleOf(cause string) string {
	t := strings.ReplaceAll(cause, "_", " ")
	if t == "" {
		return http.StatusText(http.StatusInternalServerError)
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// writeError is the one table from domain errors to HTTP. Only 5xx are
// logged, and an internal error's text never reaches the client.
func (s *server) writeError(c *gin.Context, err error) {
	var ie *ingest.Error
	var bad *timeline.InvalidParam
	switch {
	case errors.As(err, &bad):
		writeProblem(c, http.StatusBadRequest, "invalid_parameter", bad.Error())
	case errors.As(err, &ie):
		p := newProblem(ie.Status, ie.Cause, ie.Detail)
		if ie.RejectedID != 0 {
			p.RejectedID = formatID(ie.RejectedID)
		}
		c.Header("Content-Type", "application/problem+json")
		c.AbortWithStatusJSON(ie.Status, p)
	case errors.Is(err, store.ErrNotFound):
		writeProblem(c, http.StatusNotFound, "not_found", "no such resource")
	case errors.Is(err, store.ErrConflict):
		writeProblem(c, http.StatusConflict, "conflict", "the request conflicts with what is stored")
	case errors.Is(err, store.ErrUnavailable):
		s.Logger.Warn("database unavailable", "path", s.logPath(c), "err", redact.LogText(err.Error()))
		c.Header("Retry-After", retryAfterSeconds)
		writeProblem(c, http.StatusServiceUnavailable, "unavailable", "the database cannot take requests right now; retry later")
	default:
		s.Logger.Error("internal error", "path", s.logPath(c), "err", redact.LogText(err.Error()))
		writeProblem(c, http.StatusInternalServerError, "internal", "internal error")
	}
}

func logLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
