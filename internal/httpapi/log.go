package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// Ledger is what the log routes need.
type Ledger interface {
	VerifierKey() string
	Inclusion(ctx context.Context, eventID, size int64) (ledger.Proof, error)
	Consistency(ctx context.Context, from, to int64) (ledger.ConsistencyProof, error)
	LatestCheckpoint(ctx context.Context) (store.Checkpoint, error)
	Checkpoints(ctx context.Context, afterID int64, limit int) ([]store.Checkpoint, error)
}

func (s *server) handleLogKey() gin.HandlerFunc {
	return func(c *gin.Context) {
		key := s.Ledger.VerifierKey()
		if key == "" {
			c.Header("Retry-After", retryAfterSeconds)
			writeProblem(c, http.StatusServiceUnavailable, "foreign_key",
				"this server's signing key did not sign the log's checkpoints, so it has no key to give: ask another server of this log")
			return
		}
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(key+"\n"))
	}
}

func (s *server) handleCheckpoint() gin.HandlerFunc {
	return func(c *gin.Context) {
		cp, err := s.Ledger.LatestCheckpoint(c.Request.Context())
		if errors.Is(err, store.ErrNotFound) {
			writeProblem(c, http.StatusNotFound, "not_found", "no checkpoint has been signed yet")
			return
		}
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(cp.Note))
	}
}

// CheckpointEntry is one stored checkpoint.
type CheckpointEntry struct {
	ID   string    `json:"id"`
	Size int64     `json:"size"`
	At   time.Time `json:"at"`
	Note string    `json:"note"`
}

func (s *server) handleCheckpoints() gin.HandlerFunc {
	return func(c *gin.Context) {
		var from int64
		if c.Query("from") != "" && c.Query("cursor") != "" {
			s.writeError(c, &timeline.InvalidParam{Param: "cursor", Detail: "is refused with from: a cursor carries its own position"})
			return
		}
		if v := c.Query("from"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				s.writeError(c, &timeline.InvalidParam{Param: "from", Detail: "must be a checkpoint id"})
				return
			}
			from = n
		}
		after, limit, err := idPage(c.Request.URL.Query(), from)
		if err != nil {
			s.writeError(c, err)
			return
		}
		rows, err := s.Ledger.Checkpoints(c.Request.Context(), after, limit+1)
		if err != nil {
			s.writeError(c, err)
			return
		}
		out := struct {
			Data []CheckpointEntry `json:"data"`
			Page timeline.Page     `json:"page"`
		}{Data: []CheckpointEntry{}}
		rows, out.Page = idPageOf(rows, limit, func(r store.Checkpoint) int64 { return r.ID })
		for _, r := range rows {
			out.Data = append(out.Data, CheckpointEntry{ID: strconv.FormatInt(r.ID, 10), Size: r.Size, At: r.At.UTC(), Note: r.Note})
		}
		c.JSON(http.StatusOK, out)
	}
}

func intParam(c *gin.Context, name string, required bool) (int64, error) {
	v := c.Query(name)
	if v == "" {
		if required {
			return 0, &timeline.InvalidParam{Param: name, Detail: "is required"}
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &timeline.InvalidParam{Param: name, Detail: "must be a whole number"}
	}
	return n, nil
}

func (s *server) handleInclusionProof() gin.HandlerFunc {
	return func(c *gin.Context) {
		event, err := intParam(c, "event", true)
		if err != nil {
			s.writeError(c, err)
			return
		}
		size, err := intParam(c, "size", false)
		if err == nil && size == 0 && c.Query("size") != "" {
			// 0 stands for the current size only when size is left out.
			err = &timeline.InvalidParam{Param: "size", Detail: "must be at least 1 (leave it out for the current tree)"}
		}
		if err != nil {
			s.writeError(c, err)
			return
		}
		p, err := s.Ledger.Inclusion(c.Request.Context(), event, size)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeProblem(c, http.StatusNotFound, "not_found", "no such event in the log (yet: events are sequenced within a second of commit)")
		case errors.Is(err, ledger.ErrBadSize):
			writeProblem(c, http.StatusBadRequest, "invalid_parameter", err.Error())
		case err != nil:
			s.writeError(c, err)
		default:
			s.respond(c, http.StatusOK, p, []int64{event})
		}
	}
}

func (s *server) handleConsistencyProof() gin.HandlerFunc {
	return func(c *gin.Context) {
		from, err := intParam(c, "from", true)
		if err != nil {
			s.writeError(c, err)
			return
		}
		to, err := intParam(c, "to", true)
		if err != nil {
			s.writeError(c, err)
			return
		}
		p, err := s.Ledger.Consistency(c.Request.Context(), from, to)
		switch {
		case errors.Is(err, ledger.ErrBadSize):
			writeProblem(c, http.StatusBadRequest, "invalid_parameter", err.Error())
		case err != nil:
			s.writeError(c, err)
		default:
			c.JSON(http.StatusOK, p)
		}
	}
}
