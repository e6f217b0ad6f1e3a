package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/redact"
)

// logRequests writes one line per request (accepted ingest deliveries at
// debug level). It never logs headers or bodies: they carry credentials and
// PHI; nor the query string, whose filters may name a caller; and the path
// only as logPath gives it.
func (s *server) logRequests() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := logLevel(status)
		if status < 300 && strings.HasPrefix(c.FullPath(), "/v1/ingest/") {
			// Accepted deliveries are counted in /metrics and kept in the
			// store; a line each would cost a write per event under load.
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !s.Logger.Enabled(ctx, level) {
			return // at info, the line of every accepted delivery
		}
		s.Logger.Log(ctx, level, "request",
			"method", c.Request.Method,
			"path", s.logPath(c),
			"status", status,
			"bytes", c.Writer.Size(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
		)
	}
}

// recoverPanics turns a panic into a logged 500 problem instead of a dropped
// connection, and so an answer gin could not write (a value JSON cannot
// hold), which it would otherwise send as an empty 200.
func (s *server) recoverPanics() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("panic", "path", s.logPath(c), "panic", redact.LogText(fmt.Sprint(v)), "stack", string(debug.Stack()))
				if answersFailure(c, true) {
					writeProblem(c, http.StatusInternalServerError, "internal", "internal error")
				}
			}
		}()
		c.Next()
		if answersFailure(c, false) {
			s.Logger.Error("answer not written", "path", s.logPath(c), "error", redact.LogText(c.Errors.Last().Error()))
			writeProblem(c, http.StatusInternalServerError, "internal", "internal error")
		}
	}
}

// answersFailure reports whether recoverPanics answers the request with a
// 500 problem: it panicked, or gin could not render its answer (gin keeps
// the error in c.Errors and writes nothing), and nothing is written yet.
// The access log asks it too, to record the status the client gets.
func answersFailure(c *gin.Context, panicked bool) bool {
	return !c.Writer.Written() && (panicked || len(c.Errors) > 0)
}

// logPath is the request path as logs may hold it (routePath), with a
// path segment that is a configured credential masked. A short secret is
// masked only as a whole segment: masked wherever it occurs in a path, it
// would tell the log's readers what it is. The raw path is masked before routePath masks
// its phone numbers, which could otherwise break up a secret of digits.
func (s *server) logPath(c *gin.Context) string {
	if len(s.credentials) == 0 {
		return routePath(c)
	}
	if c.FullPath() == "" {
		return redact.Text(s.credentials.Mask(c.Request.URL.Path))
	}
	return s.credentials.Mask(routePath(c))
}

// routePath is the request path as logs may hold it. A contact timeline's path
// is a phone number or customer id, so on a matched route the path is
// rebuilt from the route pattern with the contact masked as analysts see it
// (/v1/contacts/+44*******123/timeline); the other parameters (case ids,
// event ids, source and event names) are kept, so that a line can still be
// traced. An unmatched path is whatever the client sent, such as a
// mistyped contact route, and has the phone numbers and e-mail addresses in
// it masked.
func routePath(c *gin.Context) string {
	route := c.FullPath()
	if route == "" {
		return redact.Text(c.Request.URL.Path)
	}
	return maskedPath(route, c.Param)
}

// maskedPath is the path of a request to route, its parameters' values
// given by param, with the contact of a contact timeline masked as
// analysts see it.
func maskedPath(route string, param func(name string) string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if len(p) < 2 || (p[0] != ':' && p[0] != '*') {
			continue
		}
		v := param(p[1:])
		if p[1:] == "contact" {
			v = redact.Phone(v)
		}
		parts[i] = v
	}
	return strings.Join(parts, "/")
}
