package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/report"
	"github.com/casetrail/casetrail/internal/store"
)

// Reports is what the report routes need of the store.
type Reports interface {
	EachAbandonFact(ctx context.Context, from, to time.Time, queue *string, fn func(*store.AbandonFact)) error
	HandledCounts(ctx context.Context, bounds []time.Time) ([]store.HandledCount, error)
	Handled(ctx context.Context, from, to time.Time) ([]store.HandledCount, error)
	AbandonContacts(ctx context.Context, f store.ContactsFilter) ([]store.AbandonContact, error)
}

func wantsCSV(c *gin.Context) bool { return prefers(c.GetHeader("Accept"), "text/csv") }

// handleAbandonment serves GET /v1/reports/abandonment (JSON or CSV).
func (s *server) handleAbandonment() gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := report.ParseQuery(c.Request.URL.Query())
		if err != nil {
			s.writeError(c, err)
			return
		}
		parts := report.Parts(q, 2)
		builders := make([]*report.Builder, len(parts))
		for i := range parts {
			builders[i] = report.NewBuilder(q)
		}
		// Its hours and days, before anything is read.
		if err := builders[0].CheckSize(); err != nil {
			s.writeError(c, err)
			return
		}
		// The work items and the two halves of the range's abandons are read
		// at the same time, on three connections.
		ctx := c.Request.Context()
		var handled []store.HandledCount
		errs := make([]error, len(parts)+1)
		var wg sync.WaitGroup
		wg.Go(func() {
			errs[0] = guarded(func() (err error) {
				if bounds := report.HandledBounds(q); bounds != nil {
					handled, err = s.Reports.HandledCounts(ctx, bounds)
				} else {
					handled, err = s.Reports.Handled(ctx, q.From, q.To)
				}
				return err
			})
		})
		for i, p := range parts {
			wg.Go(func() {
				errs[i+1] = guarded(func() error { return s.Reports.EachAbandonFact(ctx, p[0], p[1], q.Queue, builders[i].Add) })
			})
		}
		wg.Wait()
		if err := cmp.Or(errs...); err != nil {
			s.writeError(c, err)
			return
		}
		b := builders[0]
		for _, o := range builders[1:] {
			b.Merge(o)
		}
		if err := b.CheckSize(); err != nil {
			s.writeError(c, err)
			return
		}
		r := b.Report(handled)
		if wantsCSV(c) {
			var buf bytes.Buffer
			if err := report.WriteCSV(&buf, q, r); err != nil {
				s.writeError(c, err)
				return
			}
			c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
			return
		}
		// Streamed: a month at PT15M by queue is tens of MB of JSON.
		c.Header("Content-Type", "application/json; charset=utf-8")
		c.Status(http.StatusOK)
		if err := r.WriteJSON(c.Writer); err != nil {
			s.Logger.Warn("report: writing the response", "err", err)
		}
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
		page, ids, err := report.Contacts(q, v, fullView(c), func(f store.ContactsFilter) ([]store.AbandonContact, error) {
			return s.Reports.AbandonContacts(c.Request.Context(), f)
		})
		if err != nil {
			s.writeError(c, err)
			return
		}
		if wantsCSV(c) {
			var buf bytes.Buffer
			if err := report.WriteContactsCSV(&buf, page); err != nil {
				s.writeError(c, err)
				return
			}
			// CSV has no envelope: the next page's cursor goes in a link.
			if page.Page.NextCursor != nil {
				next := c.Request.URL.Query()
				next.Set("cursor", *page.Page.NextCursor)
				c.Header("Link", "<"+c.Request.URL.EscapedPath()+"?"+next.Encode()+`>; rel="next"`)
			}
			s.send(c, http.StatusOK, "text/csv; charset=utf-8", buf.Bytes(), ids)
			return
		}
		s.respond(c, http.StatusOK, page, ids)
	}
}

// guarded runs f and turns a panic into an error: a panic in a goroutine
// that a handler starts would end the process, out of gin's recovery.
func guarded(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return f()
}
