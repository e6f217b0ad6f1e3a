package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ingest"
)

// handleIngest serves POST /v1/ingest/{source}[/{event}]. The answer is
// sent only after the event is committed.
func (s *server) handleIngest() gin.HandlerFunc {
	limit, handleTimeout := s.Config.MaxBodyBytes, handleLimit(s.Config)
	return func(c *gin.Context) {
		// The Content-Type as sent: its charset says how to read the raw body.
		req := ingest.Request{
			Source:      c.Param("source"),
			PathEvent:   c.Param("event"),
			Header:      c.Request.Header,
			ContentType: c.GetHeader("Content-Type"),
			ReceivedAt:  time.Now().UTC(),
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			req.TooLarge = true
		case err != nil:
			writeProblem(c, http.StatusBadRequest, "unreadable_body", "the request body could not be read completely")
			return
		}
		req.Body = body
		req.BodySize = int64(len(body))

		// A delivery read in full is handled to the end, once: net/http
		// cancels a request's context when the sender closes its side of
		// the connection, as a sender may once its request is sent, and
		// that aborted the commit of the delivery (or the keeping of its
		// refusal). The handling is bounded instead by the shutdown
		// timeout, the time a stopping server gives requests in flight.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), handleTimeout)
		rep, err := s.Ingest.Handle(ctx, req)
		cancel()
		if err != nil {
			s.writeError(c, err)
			return
		}
		if rep.Spooled {
			c.Header("X-Casetrail-Spooled", "true")
		} else {
			c.Header("X-Casetrail-Event-Id", formatID(rep.ID))
		}
		c.Data(rep.Status, "application/json", rep.Body)
	}
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

// handleLimit bounds the handling of one delivery read in full.
func handleLimit(cfg *config.Config) time.Duration {
	if cfg != nil && cfg.ShutdownTimeout > 0 {
		return time.Duration(cfg.ShutdownTimeout)
	}
	return 30 * time.Second
}
