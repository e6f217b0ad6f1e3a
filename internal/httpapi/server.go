// Package httpapi is casetrail's HTTP surface: routes, authentication of
// readers, problem+json errors, request logging and recovery. Handlers speak
// the DTOs of api/openapi.yaml; storage types stay behind the store.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ingest"
)

// Readiness is what /readyz asks of the database.
type Readiness interface {
	Ready(ctx context.Context) error
}

// Deps are everything the HTTP layer needs.
type Deps struct {
	Config  *config.Config
	Ingest  *ingest.Service
	Ready   Readiness
	Reads   Reads
	Ledger  Ledger
	Reports Reports
	// ReportDown says whether the report database, when reports read from
	// one (a replica), failed its last check: /readyz then warns. Nil when
	// reports read from the primary.
	ReportDown func() bool
	Logger     *slog.Logger
	Registry   *prometheus.Registry
	// Draining turns /readyz to 503 while the server shuts down, so that a
	// load balancer stops sending before connections close.
	Draining *atomic.Bool
	// Warnings are conditions an operator must know of (e.g. fsync off);
	// /readyz reports them.
	Warnings []string
}

type server struct {
	Deps
}

// NewServer builds the HTTP handler.
func NewServer(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if d.Draining == nil {
		d.Draining = &atomic.Bool{}
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &server{Deps: d}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = false
	r.Use(s.logRequests(), s.recoverPanics())
	s.routes(r)
	return r
}
