package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/api"
	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
)

type healthBody struct {
	Status   string   `json:"status"`
	Warnings []string `json:"warnings,omitempty"`
}

// notReady is /readyz's 503: a problem detail, as every error is, that also
// carries the warnings an operator must know of.
type notReady struct {
	Problem
	Warnings []string `json:"warnings,omitempty"`
}

func (s *server) writeNotReady(c *gin.Context, cause, detail string) {
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(http.StatusServiceUnavailable, notReady{
		Problem:  newProblem(http.StatusServiceUnavailable, cause, detail),
		Warnings: s.warnings(),
	})
}

// warnings are the conditions an operator must know of, as /readyz gives
// them whether or not the server is ready.
func (s *server) warnings() []string {
	warnings := slices.Clone(s.Warnings)
	// Reports answer 503 without their database; ingest and every other
	// read go on, so the server stays ready.
	if s.ReportDown != nil && s.ReportDown() {
		warnings = append(warnings, "the report database is not reachable, not migrated, or not a replica of the store's database: reports answer 503 until it is")
	}
	// A signer that refuses (its key did not sign the newest checkpoint, or
	// a previous key signed after it) has no key to give.
	if s.Ledger != nil && s.Ledger.VerifierKey() == "" {
		warnings = append(warnings, "this server signs no checkpoints: neither its log_signing_key nor one of its log_previous_keys may sign after the newest stored one (see its log)")
	}
	if n := s.Ingest.Spooled(); n > 0 {
		warnings = append(warnings, fmt.Sprintf("%d before-hook events wait in the local spool for the database", n))
	}
	return warnings
}

// reportsUp answers 503 while the report database is found down, or found
// to be another database than the store's: its answers would be wrong,
// not merely missing.
func (s *server) reportsUp() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.ReportDown != nil && s.ReportDown() {
			s.writeError(c, fmt.Errorf("%w: the report database", store.ErrUnavailable))
			c.Abort()
		}
	}
}

// handleHealthz answers while the process is up.
func (s *server) handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, healthBody{Status: "ok"})
	}
}

// handleReadyz answers 200 when the database is reachable, carries every
// migration of this binary and takes writes, 503 otherwise or while
// draining. A report
// database that is down is a warning, not a reason to stop taking events.
func (s *server) handleReadyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.Draining.Load() {
			s.writeNotReady(c, "draining", "the server is shutting down: send new requests to another")
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
		defer cancel()
		if err := s.Ready.Ready(ctx); err != nil {
			s.Logger.Warn("not ready", "err", redact.LogText(err.Error()))
			if errors.Is(err, store.ErrUnavailable) && s.Ingest.Spools() {
				// The spool answers before-* hooks while the database is
				// out, which is what it is for: a load balancer that took
				// the server out would answer them itself, with an error.
				c.JSON(http.StatusOK, healthBody{Status: "ready", Warnings: append(s.warnings(),
					"the database is not reachable: before-* hooks are answered and spooled, every other delivery and read answers 503")})
				return
			}
			s.writeNotReady(c, "not_ready", "the database is not reachable, not migrated, or takes no writes")
			return
		}
		c.JSON(http.StatusOK, healthBody{Status: "ready", Warnings: s.warnings()})
	}
}

func (s *server) handleOpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/yaml", api.OpenAPI)
	}
}
