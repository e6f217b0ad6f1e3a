// Command chaos checks casetrail's promise that a 2xx means the event is
// stored exactly once. It runs the real binary on its own PostgreSQL (reached
// through a TCP proxy it can cut), drives a mixed load of all three source
// kinds from concurrent senders that record every request's outcome and
// retry unknown outcomes as a platform would (same body, same key), and
// meanwhile injects faults: kill -9 of casetrail, immediate PostgreSQL stops,
// connection cuts at random moments and right after a COMMIT was sent, and
// SIGTERMs. At the end it reads the store through the public event feed and
// compares what was acknowledged with what is stored.
//
// At the end the database is stopped for -outage (30 s): before-* hooks must
// keep answering (p99 under 200 ms) and be stored exactly once afterwards.
//
//	go run ./cmd/chaos -kills 20 -pgstops 5 -cuts 200 -sigterms 3 -outage 30s
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/localpg"
	"github.com/casetrail/casetrail/internal/store"
)

const (
	checkerKey = "chaos-checker-read-key"
	cuSecret   = "chaos-cu-secret"
	saSecret   = "chaos-sa-secret"
	shKey      = "chaos-sh-key"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

type options struct {
	binary                         string
	senders                        int
	kills, pgStops, cuts, sigterms int
	outage                         time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/casetrail", "the casetrail binary")
	flag.IntVar(&o.senders, "senders", 32, "concurrent senders")
	flag.IntVar(&o.kills, "kills", 20, "kill -9 cycles of casetrail")
	flag.IntVar(&o.pgStops, "pgstops", 5, "immediate PostgreSQL stops")
	flag.IntVar(&o.cuts, "cuts", 200, "cuts of the connections between casetrail and PostgreSQL")
	flag.IntVar(&o.sigterms, "sigterms", 3, "SIGTERMs under load")
	flag.DurationVar(&o.outage, "outage", 30*time.Second, "a database outage at the end, timing before-* hooks during it (0: none)")
	flag.Parse()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "casetrail-chaos-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pg, err := localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(dir, "pg"), TCP: true})
	if err != nil {
		return err
	}
	defer pg.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	admin := pg.URL("postgres")
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE chaos"); err != nil {
		return err
	}
	conn.Close(ctx)
	direct := dbtest.WithDatabase(admin, "chaos")
	m, err := store.NewMigrator(direct)
	if err != nil {
		return err
	}
	if err := m.Up(ctx, io.Discard); err != nil {
		return err
	}
	m.Close()

	proxy, err := dbtest.ListenProxy(fmt.Sprintf("127.0.0.1:%d", pg.Port()))
	if err != nil {
		return err
	}
	defer proxy.Close()
	viaProxy := fmt.Sprintf("postgres://postgres@%s/chaos?sslmode=disable", proxy.Addr())

	srv := &server{binary: o.binary, dir: dir, dbURL: viaProxy, addr: freeAddr()}
	if err := srv.start(); err != nil {
		return err
	}
	defer srv.kill()

	ld := &load{addr: srv.addr}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range o.senders {
		wg.Add(1)
		go func() { defer wg.Done(); ld.sender(i, stop) }()
	}

	faults := []struct {
		name  string
		count int
		do    func() error
	}{
		{"kill -9 casetrail", o.kills, func() error { srv.kill(); return srv.start() }},
		{"PostgreSQL immediate stop", o.pgStops, func() error {
			if err := pg.Kill(ctx); err != nil {
				return err
			}
			time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond) // an outage of 0.5-2 s
			return pg.Restart(ctx)
		}},
		{"connection cut at a random moment", o.cuts - o.cuts/2, func() error {
			proxy.Cut()
			return nil
		}},
		{"connection cut right after a commit", o.cuts / 2, func() error {
			proxy.CutAfterNextCommit()
			return nil
		}},
		{"SIGTERM", o.sigterms, func() error { return srv.term() }},
	}
	var plan []int
	for i, f := range faults {
		for range f.count {
			plan = append(plan, i)
		}
	}
	rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	done := map[string]int{}
	start := time.Now()
	for _, i := range plan {
		// Load runs between faults, so every fault hits requests in flight.
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		ld.fault(faults[i].name)
		if err := faults[i].do(); err != nil {
			return fmt.Errorf("%s: %w", faults[i].name, err)
		}
		done[faults[i].name]++
	}
	var outageStart, outageEnd time.Time
	if o.outage > 0 {
		// Agents keep resolving cases during the outage: 8 senders of
		// before-* hooks only, beside the mixed load.
		agents := make(chan struct{})
		var agentsWG sync.WaitGroup
		for i := range 8 {
			agentsWG.Add(1)
			go func() { defer agentsWG.Done(); ld.agent(i, agents) }()
		}
		time.Sleep(time.Second)
		outageStart = time.Now()
		ld.fault(outageName)
		if err := pg.Kill(ctx); err != nil {
			return err
		}
		time.Sleep(o.outage)
		outageEnd = time.Now()
		if err := pg.Restart(ctx); err != nil {
			return err
		}
		close(agents)
		agentsWG.Wait()
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	// A clean stop drains what the server holds (spool, log); the restarted
	// server then serves the whole store through its feed.
	if err := srv.term(); err != nil {
		return err
	}
	stored, dupes, err := feedKeys(srv.addr)
	if err != nil {
		return err
	}
	// The log, whose rounds commit without waiting for their flush and
	// so can be lost at a PostgreSQL stop, must have been redone alike:
	// every stored checkpoint agrees with the tree recomputed from the
	// events, and the newest covers them all.
	logRep, err := verifyLog(ctx, direct, srv.addr)
	srv.kill()
	if err != nil {
		return err
	}
	if total := int64(len(stored) + dupes); logRep.Checkpoint.Size != total {
		return fmt.Errorf("VIOLATION: the newest signed checkpoint covers %d events, the store holds %d", logRep.Checkpoint.Size, total)
	}
	var acked, rejected, unknown, missing, phantom, unknownStored int
	for _, r := range ld.records() {
		switch r.outcome {
		case acknowledged:
			acked++
			if !stored[r.key] {
				missing++
			}
		case refused:
			rejected++
		default:
			unknown++
			if stored[r.key] {
				unknownStored++
			}
		}
	}
	sent := map[string]bool{}
	for _, r := range ld.records() {
		sent[r.key] = true
	}
	for k := range stored {
		if !sent[k] {
			phantom++
		}
	}

	// Every failed attempt is put down to the last fault before it.
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "fault\tinjected\tfailed attempts after it\trefused (restarting)\treset\ttimeout\t503\tother\t")
	names := []string{}
	for _, f := range faults {
		names = append(names, f.name)
	}
	if o.outage > 0 {
		names = append(names, outageName)
		done[outageName] = 1
	}
	byFault := ld.failuresByFault()
	for _, name := range names {
		c := byFault[name]
		if c == nil {
			c = &failCounts{}
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, done[name], c.total(), c[failRefused], c[failReset], c[failTimeout], c[fail503], c[failOther])
	}
	w.Flush()
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "events sent\tacknowledged\trefused 4xx\tunknown (gave up)\t...of which stored\tacked but missing\tstored twice\tstored, never sent\tevents/s acked\t")
	fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", len(ld.records()), acked, rejected, unknown, unknownStored,
		missing, dupes, phantom, float64(acked)/elapsed.Seconds())
	w.Flush()
	fmt.Printf("retries after unknown outcomes: %d\n", ld.retries.Load())
	if o.outage > 0 {
		var lat []time.Duration
		for _, h := range ld.hookTimes() {
			if !h.at.Before(outageStart) && h.at.Before(outageEnd) {
				lat = append(lat, h.took)
			}
		}
		if len(lat) == 0 {
			return errors.New("no before-* hook was answered during the outage")
		}
		slices.Sort(lat)
		p99 := lat[len(lat)*99/100]
		fmt.Printf("before-* hooks answered during the %s database outage: %d, p50 %s, p99 %s, max %s\n", o.outage, len(lat),
			lat[len(lat)/2].Round(100*time.Microsecond), p99.Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
		if p99 > 200*time.Millisecond {
			return fmt.Errorf("before-* hooks p99 %s during the outage is over 200ms", p99)
		}
	}
	if missing > 0 || dupes > 0 || phantom > 0 {
		return errors.New("VIOLATION: an acknowledged event is missing, or an event is stored twice or was never sent")
	}
	fmt.Printf("log: %d leaves recomputed from the events agree with all %d signed checkpoints\n", logRep.Leaves, logRep.Checkpoints)
	fmt.Println("OK: every acknowledged event is stored exactly once; nothing stored that was not sent")
	return nil
}

// verifyLog checks the whole log against every signed checkpoint, with the
// verifier key the server at addr publishes.
func verifyLog(ctx context.Context, dbURL, addr string) (ledger.Report, error) {
	res, err := checkerGet(addr, "/v1/log/key", "text/plain", time.Minute)
	if err != nil {
		return ledger.Report{}, fmt.Errorf("verifier key: %w", err)
	}
	key, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return ledger.Report{}, fmt.Errorf("verifier key: %w", err)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(key)))
	if err != nil {
		return ledger.Report{}, fmt.Errorf("verifier key: %w", err)
	}
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		return ledger.Report{}, err
	}
	defer st.Close()
	rep, err := ledger.Verify(ctx, st, ledger.KeyChain{verifier}, nil)
	if err != nil {
		return rep, fmt.Errorf("VIOLATION: the log does not verify: %w", err)
	}
	return rep, nil
}

// checkerGet reads path from the server at addr with the checker's read
// key; any answer but 200 is an error. The caller closes the body.
func checkerGet(addr, path, accept string, timeout time.Duration) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+checkerKey)
	req.Header.Set("Accept", accept)
	res, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, errors.New(res.Status)
	}
	return res, nil
}

// feedKeys reads the whole store through the public event feed (NDJSON)
// and returns the idempotency keys of the events in it and how many keys
// appear more than once.
func feedKeys(addr string) (map[string]bool, int, error) {
	res, err := checkerGet(addr, "/v1/events", "application/x-ndjson", 5*time.Minute)
	if err != nil {
		return nil, 0, fmt.Errorf("feed: %w", err)
	}
	defer res.Body.Close()
	keys := map[string]bool{}
	dupes := 0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			IdempotencyKey string          `json:"idempotencyKey"`
			Page           json.RawMessage `json:"page"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, 0, err
		}
		if line.Page != nil {
			continue
		}
		if keys[line.IdempotencyKey] {
			dupes++
		}
		keys[line.IdempotencyKey] = true
	}
	return keys, dupes, sc.Err()
}

type outcome int

const (
	unknownOutcome outcome = iota
	acknowledged
	refused
)

type record struct {
	key     string
	outcome outcome
}

type load struct {
	addr     string
	mu       sync.Mutex
	recs     []record
	hooks    []hookTime
	seq      atomic.Int64
	retries  atomic.Int64
	lastFail string // the fault injected last
	failures map[string]*failCounts
}

const outageName = "database outage (at the end)"

type failKind int

const (
	failRefused failKind = iota
	failReset
	failTimeout
	fail503
	failOther
	failKinds
)

type failCounts [failKinds]int

func (c *failCounts) total() int {
	if c == nil {
		return 0
	}
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (l *load) fault(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastFail = name
}

func (l *load) failed(k failKind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == nil {
		l.failures = map[string]*failCounts{}
	}
	name := l.lastFail
	if name == "" {
		name = "(before any fault)"
	}
	if l.failures[name] == nil {
		l.failures[name] = &failCounts{}
	}
	l.failures[name][k]++
}

func (l *load) failuresByFault() map[string]*failCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

func classify(err error) failKind {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return failRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failReset
	case os.IsTimeout(err):
		return failTimeout
	}
	return failOther
}

// hookTime is one answered before-* hook: when it was sent and how long the
// answer took.
type hookTime struct {
	at   time.Time
	took time.Duration
}

func (l *load) hookTimes() []hookTime {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hooks
}

func (l *load) records() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recs
}

// sender sends distinct events until stop, each with its own idempotency
// key, retrying an unknown outcome with the same key and body for up to
// 90 seconds, as a platform would.
func (l *load) sender(id int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.send(l.seq.Add(1))
	}
}

// send delivers the n-th event until it gets an answer (or 30 s pass) and
// records the outcome.
func (l *load) send(n int64) {
	client := &http.Client{Timeout: 5 * time.Second}
	key := fmt.Sprintf("chaos-%d", n)
	path, body, header := request(n)
	header.Set("Idempotency-Key", key)
	out := unknownOutcome
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if attempt > 0 {
			l.retries.Add(1)
			time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+l.addr+path, bytes.NewReader(body))
		req.Header = header.Clone()
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			l.failed(classify(err))
			continue
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck
		res.Body.Close()
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			if strings.Contains(path, "/before-") {
				l.mu.Lock()
				l.hooks = append(l.hooks, hookTime{at: t0, took: time.Since(t0)})
				l.mu.Unlock()
			}
			out = acknowledged
			break
		}
		if res.StatusCode >= 400 && res.StatusCode < 500 {
			out = refused
			break
		}
		if res.StatusCode == http.StatusServiceUnavailable {
			l.failed(fail503)
		} else {
			l.failed(failOther)
		}
	}
	l.mu.Lock()
	l.recs = append(l.recs, record{key: key, outcome: out})
	l.mu.Unlock()
}

// agent sends before-resolve hooks only, as agents resolving cases do.
func (l *load) agent(id int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		n := l.seq.Add(1)
		for n%4 != 1 { // the before-resolve slot of request's mix
			n = l.seq.Add(1)
		}
		l.send(n)
	}
}

// request builds the n-th event: a mix of the three kinds.
func request(n int64) (string, []byte, http.Header) {
	h := http.Header{"Content-Type": {"application/json"}}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	switch n % 4 {
	case 0:
		body := []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"changeStatus":{"caseId":"c-%d","oldStatus":"Open","newStatus":"Resolved","changeDate":%q}}}`, n%500, at))
		m := hmac.New(sha256.New, []byte(cuSecret))
		m.Write(body)
		h.Set("x-cv-signature", hex.EncodeToString(m.Sum(nil)))
		return "/v1/ingest/case-updates", body, h
	case 1:
		body := []byte(fmt.Sprintf(`{"caseId":"c-%d","status":"Active","useCustomerContactInfo":false,"n":%d}`, n%500, n))
		m := hmac.New(sha256.New, []byte(saSecret))
		m.Write(body)
		h.Set("Authorization", "HMAC "+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		return "/v1/ingest/service-actions/before-resolve", body, h
	case 2:
		body := []byte(fmt.Sprintf(`{"customerPhoneNumber":"+4477009%05d","timeInQueue":%d,"timestamp":%q,"queue":"Q%d"}`, n%90000, n%300, at, n%5))
		h.Set("x-api-key", shKey)
		return "/v1/ingest/service-hooks/abandoned-conversation", body, h
	default:
		body := []byte(fmt.Sprintf(`{"agentID":"a-%d","targetPhoneNumber":"+4477009%05d","Timestamp":%q}`, n%40, n%90000, at))
		h.Set("x-api-key", shKey)
		return "/v1/ingest/service-hooks/outbound-call", body, h
	}
}

type server struct {
	binary, dir, dbURL, addr string
	cmd                      *exec.Cmd
}

func (s *server) start() error {
	cfg := filepath.Join(s.dir, "chaos.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %q
shutdown_timeout: 20s
before_hooks_on_outage: spool
sources:
  - {name: case-updates, kind: case-updates, hmac_secret: %q}
  - {name: service-actions, kind: service-actions, hmac_secret: %q}
  - {name: service-hooks, kind: service-hooks, api_keys: [%q]}
read_keys:
  - {name: checker, role: admin, key: %q}
`, s.addr, cuSecret, saSecret, shKey, checkerKey)), 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.binary, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.dbURL, "CASETRAIL_DATA_DIR="+filepath.Join(s.dir, "data"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if path := os.Getenv("CHAOS_SERVER_LOG"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
			cmd.Stderr = f
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w (build it with `make build`)", s.binary, err)
	}
	s.cmd = cmd
	// Up when it answers /healthz; it may wait for the database first.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
			res.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("casetrail did not come up")
}

func (s *server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill() //nolint:errcheck
		s.cmd.Wait()         //nolint:errcheck
	}
	s.cmd = nil
}

// term sends SIGTERM, waits for the graceful exit, and starts it again.
func (s *server) term() error {
	if s.cmd == nil {
		return s.start()
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	s.cmd.Wait() //nolint:errcheck
	s.cmd = nil
	return s.start()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
