package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/ingest"
)

// handleIngest serves POST /v1/ingest/{source}[/{event}]. The answer is
// sent only after the event is committed.
func (s *server) handleIngest() gin.HandlerFunc {
	limit := s.Config.MaxBodyBytes
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

		ctx := c.Request.Context()
		rep, err := s.Ingest.Handle(ctx, req)
		if err != nil && ctx.Err() != nil && errors.Is(err, ingest.ErrUnavailable) {
			// net/http cancels a request's context when the sender closes
			// its side of the connection, as a sender may once its request
			// is sent, and that aborted the commit of a delivery read in
			// full. It is handled once more, this time to the end; only on
			// this path, so that valid deliveries pay nothing for it.
			rep, err = s.Ingest.Handle(context.WithoutCancel(ctx), req)
		}
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
