package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/casetrail/casetrail/internal/config"
)

// routes is the whole route table; api/openapi.yaml documents every entry.
func (s *server) routes(r *gin.Engine) {
	r.GET("/healthz", s.handleHealthz())
	r.GET("/readyz", s.handleReadyz())
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})))
	r.GET("/openapi.yaml", s.handleOpenAPI())

	r.POST("/v1/ingest/:source", s.handleIngest())
	r.POST("/v1/ingest/:source/:event", s.handleIngest())

	anyReader := s.requireReader(config.RoleAnalyst, config.RoleAuditor, config.RoleAdmin)
	v1 := r.Group("/v1")
	v1.GET("/cases/:caseId/timeline", anyReader, s.handleCaseTimeline())
	v1.GET("/contacts/:contact/timeline", anyReader, s.handleContactTimeline())
	v1.GET("/events", anyReader, s.handleFeed())
	v1.GET("/events/:id", anyReader, s.handleEvent())
	v1.GET("/blobs/:sha256", s.requireReader(config.RoleAuditor), s.handleBlob())
	v1.GET("/access-log", s.requireReader(config.RoleAdmin), s.handleAccessLog())
	v1.GET("/rejected", s.requireReader(config.RoleAdmin, config.RoleAuditor), s.handleRejections())
	v1.GET("/rejected/:id", s.requireReader(config.RoleAdmin, config.RoleAuditor), s.handleRejection())
	v1.GET("/reports/abandonment", anyReader, s.reportsUp(), s.handleAbandonment())
	v1.GET("/reports/abandonment/contacts", anyReader, s.reportsUp(), s.handleAbandonmentContacts())
	v1.GET("/log/key", anyReader, s.handleLogKey())
	v1.GET("/log/checkpoint", anyReader, s.handleCheckpoint())
	v1.GET("/log/checkpoints", anyReader, s.handleCheckpoints())
	v1.GET("/log/proof/inclusion", anyReader, s.handleInclusionProof())
	v1.GET("/log/proof/consistency", anyReader, s.handleConsistencyProof())

	r.NoRoute(func(c *gin.Context) {
		writeProblem(c, http.StatusNotFound, "not_found", "no such route: "+c.Request.Method+" "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, "method_not_allowed", c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})
}
