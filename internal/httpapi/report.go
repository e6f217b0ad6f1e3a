package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/report"
	"github.com/casetrail/casetrail/internal/store"
)

// Reports is what the report routes need of the store.
type Reports interface {
	Abandons(ctx context.Context, from, to time.Time, queue *string, window time.Duration) ([]store.Abandon, error)
	Handled(ctx context.Context, from, to time.Time) (closed, received []time.Time, err error)
}

func wantsCSV(c *gin.Context) bool { return strings.Contains(c.GetHeader("Accept"), "text/csv") }

// handleAbandonment serves GET /v1/reports/abandonment (JSON or CSV).
func (s *server) handleAbandonment() gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := report.ParseQuery(c.Request.URL.Query())
		if err != nil {
			s.writeError(c, err)
			return
		}
		ctx := c.Request.Context()
		abandons, err := s.Reports.Abandons(ctx, q.From, q.To, q.Queue, q.CallbackWindow)
		if err != nil {
			s.writeError(c, err)
			return
		}
		closed, received, err := s.Reports.Handled(ctx, q.From, q.To)
		if err != nil {
			s.writeError(c, err)
			return
		}
		var asOf *time.Time
		for _, a := range abandons {
			if asOf == nil || a.ReceivedAt.After(*asOf) {
				t := a.ReceivedAt
				asOf = &t
			}
		}
		for _, t := range received {
			if asOf == nil || t.After(*asOf) {
				t := t
				asOf = &t
			}
		}
		r := report.Build(q, abandons, closed, asOf)
		if wantsCSV(c) {
			var buf bytes.Buffer
			if err := report.WriteCSV(&buf, q, r); err != nil {
				s.writeError(c, err)
				return
			}
			c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
			return
		}
		c.JSON(http.StatusOK, r)
	}
}

// handleAbandonmentContacts serves GET /v1/reports/abandonment/contacts: the
// abandons behind any cell, with their callback status.
func (s *server) handleAbandonmentContacts() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		q, err := report.ParseQuery(v)
		if err != nil {
			s.writeError(c, err)
			return
		}
		abandons, err := s.Reports.Abandons(c.Request.Context(), q.From, q.To, q.Queue, q.CallbackWindow)
		if err != nil {
			s.writeError(c, err)
			return
		}
		page, ids, err := report.Contacts(q, v, abandons, fullView(c))
		if err != nil {
			s.writeError(c, err)
			return
		}
		if err := s.recordAccess(c, http.StatusOK, ids); err != nil {
			s.writeError(c, err)
			return
		}
		if wantsCSV(c) {
			var buf bytes.Buffer
			if err := report.WriteContactsCSV(&buf, page); err != nil {
				s.writeError(c, err)
				return
			}
			c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
			return
		}
		c.JSON(http.StatusOK, page)
	}
}
