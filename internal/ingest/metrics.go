package ingest

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count ingestion outcomes per source.
type Metrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the ingest metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casetrail_ingest_requests_total",
			Help: "Ingest requests by source and outcome (accepted, duplicate, spooled, rejected, unavailable).",
		}, []string{"source", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casetrail_ingest_rejected_total",
			Help: "Refused ingest requests by source and cause.",
		}, []string{"source", "cause"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "casetrail_ingest_duration_seconds",
			Help:    "Time from a request's body being read to its answer (commit included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"source"}),
	}
	reg.MustRegister(m.requests, m.rejected, m.latency)
	return m
}

func (m *Metrics) observe(source string, rep Reply, err error, d time.Duration) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(source).Observe(d.Seconds())
	var e *Error
	switch {
	case err == nil && rep.Spooled:
		m.requests.WithLabelValues(source, "spooled").Inc()
	case err == nil && rep.Duplicate:
		m.requests.WithLabelValues(source, "duplicate").Inc()
	case err == nil:
		m.requests.WithLabelValues(source, "accepted").Inc()
	case errors.As(err, &e):
		m.requests.WithLabelValues(source, "rejected").Inc()
		m.rejected.WithLabelValues(source, e.Cause).Inc()
	default:
		m.requests.WithLabelValues(source, "unavailable").Inc()
	}
}
