package httpapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// logRequests writes one line per request (accepted ingest deliveries at
// debug level). It never logs headers or bodies: they carry credentials and
// PHI.
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
			"path", c.Request.URL.Path,
			"status", status,
			"bytes", c.Writer.Size(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
		)
	}
}

// recoverPanics turns a panic into a logged 500 problem instead of a dropped
// connection.
func (s *server) recoverPanics() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("panic", "path", c.Request.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					writeProblem(c, http.StatusInternalServerError, "internal", "internal error")
				}
			}
		}()
		c.Next()
	}
}
