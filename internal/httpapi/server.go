// Package httpapi is casetrail's HTTP surface: routes, authentication of
// readers, problem+json errors, request logging and recovery. Handlers speak
// the DTOs of api/openapi.yaml; storage types stay behind the store.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
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
	// Draining turns /readyz to 503 while the server shuts down: for
	// shutdown_delay before it stops taking connections, so that a load
	// balancer stops sending first.
	Draining *atomic.Bool
	// Warnings are conditions an operator must know of (e.g. fsync off);
	// /readyz reports them.
	Warnings []string
}

type server struct {
	Deps
	// credentials are every secret the configuration holds, masked in the
	// paths that logs and the access log hold: a client may put one in its
	// URL by mistake.
	credentials config.Secrets
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
	s := &server{Deps: d, credentials: d.Config.Secrets()}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = false
	// Routes match the path as sent, so that an id holding "/" (a case id
	// 2024/0001, sent as 2024%2F0001) is one parameter; parameters are
	// unescaped.
	r.UseRawPath = true
	// A redirect is no answer to a webhook: most senders do not follow one
	// with their POST, and the delivery would be lost unrecorded. A path
	// with a trailing slash is served as the path without it instead.
	r.RedirectTrailingSlash = false
	r.Use(s.logRequests(), s.recoverPanics())
	s.routes(r)
	return engine{r}
}

// engine serves /a/b/ as /a/b, and keeps a "+" in a path a "+": gin
// unescapes the parameters of a path routed as sent like a query, which
// reads "+" as a space (a contact "+44..." or a case "A+B").
type engine struct{ *gin.Engine }

func (e engine) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p, raw := req.URL.Path, req.URL.RawPath
	slash := len(p) > 1 && strings.HasSuffix(p, "/")
	if slash || strings.Contains(raw, "+") {
		u := *req.URL
		if slash {
			u.Path, u.RawPath = strings.TrimSuffix(p, "/"), strings.TrimSuffix(raw, "/")
		}
		u.RawPath = strings.ReplaceAll(u.RawPath, "+", "%2B")
		req = req.Clone(req.Context())
		req.URL = &u
	}
	e.Engine.ServeHTTP(w, req)
}
