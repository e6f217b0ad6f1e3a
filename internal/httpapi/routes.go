package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the whole route table; api/openapi.yaml documents every entry.
func (s *server) routes(r *gin.Engine) {
	r.GET("/healthz", s.handleHealthz())
	r.GET("/readyz", s.handleReadyz())
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})))
	r.GET("/openapi.yaml", s.handleOpenAPI())

	r.POST("/v1/ingest/:source", s.handleIngest())
	r.POST("/v1/ingest/:source/:event", s.handleIngest())

	r.NoRoute(func(c *gin.Context) {
		writeProblem(c, http.StatusNotFound, "not_found", "no such route: "+c.Request.Method+" "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, "method_not_allowed", c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})
}
