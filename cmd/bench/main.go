// Command bench measures casetrail's ingest throughput against the
// database's own limit, in one run on one PostgreSQL with durable settings
// (fsync, synchronous_commit and full_page_writes on):
//
//  1. COPY of N normalised events of the seed mix into the events table
//     (one statement): the limit;
//  2. the casetrail server (a separate process, group commit on) driven over
//     HTTP with N other events by 1, 16, 64 and 256 concurrent senders,
//     every request authenticated and durably acknowledged;
//  3. the same with group commit off (one transaction per request), from a
//     second server on its own database.
//
// Between 1 and 2 it also stores N events through the write path's own
// statement (store.Ingest) without HTTP, in batches of -statement-batch (32)
// one after another: the database's side of group commit alone.
// -compare-binary and -compare-env measure a
// second group-commit server (another build, or more environment) alike;
// -compare-naive-pools, more naive servers with other pool sizes.
// -scale measures something else: what docs/scaling.md reports (one server
// against two on one database; ingest while an analyst runs reports on the
// primary or on a hot standby).
//
// The machine is shared and noisy, so everything is measured -rounds times
// (default 3), and each round measures everything once, in turn: COPY, the
// statement, then each level on every server, each measurement starting
// once the previous one's events are all in the log, and each HTTP one
// after -warmup deliveries (2,000) at its concurrency. It prints the medians
// of events/s and of the cores used, the ratios of the medians to COPY and
// to the naive path, p50/p99 acknowledgement latency over every round, the
// servers' peak RSS, every round's rates and p99 and the ratios within each round,
// and checks that the number of stored events equals the number of 2xx
// answers.
//
//	go run ./cmd/bench -events 10000
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
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/localpg"
	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const (
	cuSecret = "bench-case-updates-secret"
	saSecret = "bench-service-actions-secret"
	shKey    = "bench-service-hooks-key"
)

type options struct {
	events          int
	warmup          int
	senders         []int
	binary          string
	cpuProfile      string
	profileAt       int
	testdataDir     string
	workers         int
	parallelBatch   int
	pgStats         bool
	compareParallel int
	compareEnv      string
	compareBinary   string
	naivePools      []int
	statementBatch  int
	statementOnly   bool
	rounds          int
	tail            bool
	scale           bool
	scaleSenders    int
	history         int
}

func run() error {
	var o options
	var senders, naivePools string
	flag.IntVar(&o.events, "events", 10000, "events per run (each concurrency level, each mode)")
	flag.IntVar(&o.warmup, "warmup", 2000, "events sent before each HTTP measurement at its concurrency, stored but not measured")
	flag.StringVar(&senders, "senders", "1,16,64,256", "concurrency levels")
	flag.StringVar(&o.binary, "binary", "bin/casetrail", "the casetrail binary to run")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the server under group-commit load here")
	flag.IntVar(&o.profileAt, "profile-senders", 64, "the concurrency level to profile")
	flag.StringVar(&o.testdataDir, "testdata", "testdata/events", "example payloads of the three sources")
	flag.IntVar(&o.workers, "commit-workers", 0, "commit_workers of the server (0: its default)")
	flag.IntVar(&o.parallelBatch, "commit-parallel-batch", 0, "commit_parallel_batch of the server (0: its default)")
	flag.IntVar(&o.compareParallel, "compare-parallel-batch", 0, "also measure group commit with this commit_parallel_batch, alike")
	flag.StringVar(&o.compareEnv, "compare-env", "", "also measure group commit with these extra environment variables (NAME=value ...), alike")
	flag.StringVar(&o.compareBinary, "compare-binary", "", "also measure group commit on this other build of the server, alike")
	flag.StringVar(&naivePools, "compare-naive-pools", "", "also measure the naive server with each of these pool sizes (pool_max_conns), alike")
	flag.IntVar(&o.statementBatch, "statement-batch", 32, "also store the events through the write path's statement without HTTP, in batches of this many (0: not)")
	flag.BoolVar(&o.statementOnly, "statement-only", false, "measure COPY and the write path's statement only, without HTTP")
	flag.BoolVar(&o.pgStats, "pgstats", false, "load pg_stat_statements and print where the database's time went under group commit")
	flag.IntVar(&o.rounds, "rounds", 3, "measure everything this many times, interleaved, and report medians")
	flag.BoolVar(&o.tail, "tail", false, "at -profile-senders, print when the slow acknowledgements came, the WAL written, and the autovacuum runs and long waits in PostgreSQL meanwhile")
	flag.BoolVar(&o.scale, "scale", false, "measure for docs/scaling.md instead: one server against two on one database, and ingest while an analyst runs reports on the primary or on a hot standby")
	flag.IntVar(&o.scaleSenders, "scale-senders", 64, "with -scale: the concurrency")
	flag.IntVar(&o.history, "history", 100000, "with -scale: events stored before the reports' measurements")
	flag.Parse()
	var err error
	if o.senders, err = counts("-senders", senders); err != nil {
		return err
	}
	if naivePools != "" {
		if o.naivePools, err = counts("-compare-naive-pools", naivePools); err != nil {
			return err
		}
	}
	ctx := context.Background()

	if o.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	if o.warmup < 0 {
		return errors.New("-warmup must not be negative")
	}
	if o.scale {
		if o.scaleSenders < 2 || o.history < 0 {
			return errors.New("-scale needs -scale-senders of at least 2 and a -history that is not negative")
		}
		return runScale(ctx, o)
	}
	if o.statementOnly && o.statementBatch < 1 {
		return errors.New("-statement-only needs -statement-batch of at least 1")
	}
	compareEnv := strings.Fields(o.compareEnv)
	for _, kv := range compareEnv {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return fmt.Errorf("-compare-env: %q is not NAME=value", kv)
		}
		if name == "DATABASE_URL" || strings.HasPrefix(name, "CASETRAIL_") {
			return fmt.Errorf("-compare-env: %s is the bench's to set", name)
		}
	}
	// Each HTTP measurement sends its warm-up and its events, all distinct.
	perLevel := o.warmup + o.events
	corpusSize := perLevel * len(o.senders) * o.rounds
	if o.statementOnly {
		corpusSize = o.events * o.rounds
	}
	corpus, err := buildCorpus(o.testdataDir, corpusSize)
	if err != nil {
		return err
	}
	fmt.Printf("corpus: %d events, average body %d bytes, %d with attachments\n",
		len(corpus), avgSize(corpus), countAttachments(corpus))

	dir, err := os.MkdirTemp("", "casetrail-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	settings := durableSettings()
	if o.pgStats {
		settings["shared_preload_libraries"] = "pg_stat_statements"
		settings["pg_stat_statements.track"] = "all"
	}
	pg, err := localpg.Start(ctx, localpg.Options{DataDir: dir, Settings: settings})
	if err != nil {
		return err
	}
	defer pg.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	admin := pg.URL("postgres")

	// 1. COPY, into a database of its own: the limit.
	copyURL, err := freshDatabase(ctx, admin, "bench_copy", true)
	if err != nil {
		return err
	}
	// The write path's own statement without HTTP, into another.
	var stmtURL string
	if o.statementBatch > 0 {
		if stmtURL, err = freshDatabase(ctx, admin, "bench_statement", true); err != nil {
			return err
		}
	}

	// 2 and 3. HTTP with and without group commit: the servers run side by
	// side on databases of their own.
	type target struct {
		name   string
		srv    *server
		dbURL  string
		ok2xx  int64
		rssMiB float64
	}
	var targets []*target
	type mode struct {
		name          string
		groupCommit   bool
		parallelBatch int
		env           []string
		binary        string
		pool          int // the server's pool_max_conns; 0: its default
	}
	modes := []mode{{name: groupMode, groupCommit: true, parallelBatch: o.parallelBatch, binary: o.binary}}
	if o.compareParallel > 0 {
		// The same group commit with another commit_parallel_batch, measured alike.
		modes = append(modes, mode{name: fmt.Sprintf("parallel at %d", o.compareParallel), groupCommit: true, parallelBatch: o.compareParallel, binary: o.binary})
	}
	if o.compareEnv != "" {
		// The same group commit with more environment, measured alike.
		modes = append(modes, mode{name: "with " + strings.Join(compareEnv, " "), groupCommit: true, parallelBatch: o.parallelBatch, env: compareEnv, binary: o.binary})
	}
	if o.compareBinary != "" {
		// Another build of the server, measured alike.
		modes = append(modes, mode{name: "build " + filepath.Base(o.compareBinary), groupCommit: true, parallelBatch: o.parallelBatch, binary: o.compareBinary})
	}
	modes = append(modes, mode{name: naiveMode, binary: o.binary})
	for _, n := range o.naivePools {
		// The naive server with a pool of another size: is its default
		// pool what holds the baseline back?
		modes = append(modes, mode{name: fmt.Sprintf("naive, pool %d", n), binary: o.binary, pool: n})
	}
	if o.statementOnly {
		modes = nil
	}
	for _, mode := range modes {
		dbURL, err := freshDatabase(ctx, admin, fmt.Sprintf("bench_server_%d", len(targets)), mode.binary == o.binary)
		if err != nil {
			return err
		}
		srvURL := dbURL
		if mode.pool > 0 {
			if srvURL, err = withPool(dbURL, mode.pool); err != nil {
				return err
			}
		}
		srv, err := startServer(ctx, mode.binary, srvURL, dir, mode.groupCommit, o.workers, mode.parallelBatch, mode.env)
		if err != nil {
			return err
		}
		defer srv.stop() //nolint:errcheck // stopped below; this is for early returns
		targets = append(targets, &target{name: mode.name, srv: srv, dbURL: dbURL})
	}

	// Every round measures everything once, in turn: COPY, the statement
	// (batches of -statement-batch events one after another, as group
	// commit does under load), then each level on every server. The
	// machine's changing speed thus falls on all of them alike, and each
	// ratio compares measurements taken minutes apart at most. Each
	// measurement starts once the servers' logs have caught up with the
	// previous one and a checkpoint has written out what it left dirty,
	// so that none pays for another's writes; each stores events of its
	// own, none a repeat.
	var copyRates, stmtRates []float64
	var rows []row
	for round := range o.rounds {
		if err := checkpoint(ctx, admin); err != nil {
			return err
		}
		r, err := copyLoad(ctx, copyURL, corpus[:o.events])
		if err != nil {
			return err
		}
		copyRates = append(copyRates, r)
		if stmtURL != "" {
			if err := checkpoint(ctx, admin); err != nil {
				return err
			}
			r, err := statementLoad(ctx, stmtURL, corpus[round*o.events:][:o.events], o.statementBatch)
			if err != nil {
				return err
			}
			stmtRates = append(stmtRates, r)
		}
		for li, c := range o.senders {
			if o.statementOnly {
				break
			}
			events := corpus[(round*len(o.senders)+li)*perLevel:][:perLevel]
			for _, t := range targets {
				if err := checkpoint(ctx, admin); err != nil {
					return err
				}
				var stopProfile func() error
				if t == targets[0] && round == 0 && o.cpuProfile != "" && c == o.profileAt {
					stopProfile = t.srv.profile(o.cpuProfile)
				}
				var w *watcher
				var began func(time.Time)
				if o.tail && c == o.profileAt {
					if w, err = watch(ctx, admin); err != nil {
						return err
					}
					began = func(start time.Time) { w.begin(ctx, start) }
				}
				before := cpuNow(t.srv.cmd.Process.Pid)
				r := drive(t.srv.addr, events, o.warmup, c, began)
				r.cpu = cpuNow(t.srv.cmd.Process.Pid).since(before)
				if w != nil {
					if err := w.finish(&r); err != nil {
						return err
					}
				}
				if stopProfile != nil {
					if err := stopProfile(); err != nil {
						fmt.Fprintln(os.Stderr, "profile:", err)
					}
				}
				r.mode, r.round = t.name, round
				t.ok2xx += int64(r.ok)
				rows = append(rows, r)
				if err := waitSequenced(ctx, t.dbURL); err != nil {
					return err
				}
			}
		}
	}
	if o.statementOnly {
		fmt.Printf("COPY of %d events in one statement: %.0f events/s (median of %d; rounds: %s)\n",
			o.events, median(copyRates), o.rounds, joinRates(copyRates))
		printStatementRate(o.statementBatch, stmtRates, copyRates)
		if o.pgStats {
			return printStatements(ctx, stmtURL, "the statement without HTTP")
		}
		return nil
	}
	for _, t := range targets {
		t.rssMiB = t.srv.peakRSS()
		if err := t.srv.stop(); err != nil {
			return err
		}
		stored, err := countEvents(ctx, t.dbURL)
		if err != nil {
			return err
		}
		if o.pgStats && t == targets[0] {
			if err := printStatements(ctx, t.dbURL, "group commit, all concurrency levels"); err != nil {
				return err
			}
		}
		onDisk, err := eventBytes(ctx, t.dbURL)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d answers 2xx, %d events stored: %s; %d bytes on disk per event\n",
			t.name, t.ok2xx, stored, verdict(t.ok2xx == stored), onDisk/max(stored, 1))
		if t.ok2xx != stored {
			return fmt.Errorf("%s: stored events (%d) differ from 2xx answers (%d)", t.name, stored, t.ok2xx)
		}
		for i := range rows {
			if rows[i].mode == t.name {
				rows[i].rssMiB = t.rssMiB
			}
		}
	}
	// The log's sequencer over the COPY-loaded events: it must keep up
	// with ingest.
	seqRate, seqN, err := sequenceRate(ctx, copyURL)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range targets {
		names = append(names, t.name)
	}
	summary := summarise(rows, o.senders, names)
	printTable(copyRates, summary, o.events, o.warmup, o.rounds)
	if o.warmup > 0 {
		printWhole(copyRates, summary)
	}
	printRounds(copyRates, rows, o.senders, names)
	if o.tail {
		printTail(rows, o.profileAt, names)
	}
	if len(stmtRates) > 0 {
		fmt.Println()
		printStatementRate(o.statementBatch, stmtRates, copyRates)
	}
	fmt.Printf("\nsequencer (leaves, subtree nodes, tree state) over %d COPY-loaded events: %.0f events/s\n", seqN, seqRate)
	printGoals(goals(copyRates, summary, rows))
	return nil
}

// durableSettings are the benchmarks' PostgreSQL settings: what a
// production deployment must run with, so that the figures mean what it
// would get.
func durableSettings() map[string]string {
	return map[string]string{
		"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
		"max_connections": "300", "shared_buffers": "256MB",
	}
}

// printStatementRate prints the write path's statement without HTTP against COPY.
func printStatementRate(batch int, stmtRates, copyRates []float64) {
	fmt.Printf("casetrail_ingest without HTTP, batches of %d events one after another: %.0f events/s (median; %.2f x COPY; rounds: %s)\n",
		batch, median(stmtRates), median(stmtRates)/median(copyRates), joinRates(stmtRates))
}

// checkpoint writes every dirty buffer out, so that the next measurement
// starts from the same state as every other: nothing left to write for it
// by the one before.
func checkpoint(ctx context.Context, admin string) error {
	return withConn(ctx, admin, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CHECKPOINT")
		return err
	})
}

// withConn runs f on a connection of its own to the database at url.
func withConn(ctx context.Context, url string, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return f(conn)
}

// waitSequenced waits until the log of the database at url holds every
// stored event.
func waitSequenced(ctx context.Context, url string) error {
	return withConn(ctx, url, func(conn *pgx.Conn) error {
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			var behind bool
			err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM events) > coalesce((SELECT max(size) FROM log_state), 0)`).Scan(&behind)
			if err != nil || !behind {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return errors.New("the log did not catch up with the stored events in 5 minutes")
	})
}

func sequenceRate(ctx context.Context, url string) (float64, int, error) {
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	seq := &ledger.Sequencer{Store: st, Log: slog.New(slog.DiscardHandler)}
	start := time.Now()
	n, err := seq.Step(ctx)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / time.Since(start).Seconds(), n, nil
}

func verdict(ok bool) string {
	if ok {
		return "equal"
	}
	return "DIFFERENT"
}

// request is one pre-signed delivery.
type request struct {
	path   string
	header http.Header
	body   []byte
	event  store.NewEvent // its normalised form, for COPY
}

// buildCorpus makes n distinct deliveries from the example payloads: each
// template gets its own delivery number so bodies (and derived idempotency
// keys) differ, as real deliveries do.
func buildCorpus(dir string, n int) ([]request, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no example payloads under %s (run from the repository root)", dir)
	}
	type template struct {
		kind, event string
		body        map[string]any
	}
	var templates []template
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var body map[string]any
		if json.Unmarshal(raw, &body) != nil {
			continue
		}
		kind := filepath.Base(filepath.Dir(f))
		templates = append(templates, template{kind: kind, event: eventOf(kind, f), body: body})
	}
	now := time.Now().UTC()
	out := make([]request, 0, n)
	for i := range n {
		t := templates[i%len(templates)]
		v := vary(t.body, i).(map[string]any)
		v["deliverySeq"] = i
		body, _ := json.Marshal(v)
		r := request{body: body, header: http.Header{"Content-Type": {"application/json"}}}
		path := "/v1/ingest/" + t.kind
		switch t.kind {
		case "case-updates":
			m := hmac.New(sha256.New, []byte(cuSecret))
			m.Write(body)
			r.header.Set("x-cv-signature", hex.EncodeToString(m.Sum(nil)))
		case "service-actions":
			m := hmac.New(sha256.New, []byte(saSecret))
			m.Write(body)
			r.header.Set("Authorization", "HMAC "+base64.StdEncoding.EncodeToString(m.Sum(nil)))
			path += "/" + t.event
		case "service-hooks":
			r.header.Set("x-api-key", shKey)
			path += "/" + t.event
		}
		r.path = path
		pathEvent := t.event
		if t.kind == "case-updates" {
			pathEvent = ""
		}
		n, err := normalize.Decode(normalize.Kind(t.kind), pathEvent, body, normalize.Options{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.kind, err)
		}
		sum := sha256.Sum256(body)
		r.event = store.NewEvent{
			ReceivedAt: now, OccurredAt: now, Source: t.kind, Kind: t.kind, Type: n.Type,
			Credential: "bench", IdempotencyKey: store.DerivedKey(n.Type, sum),
			CaseID: n.CaseID, Phone: n.Phone, CustomerID: n.CustomerID, ConversationID: n.ConversationID,
			AgentID: n.AgentID, WorkItemID: n.WorkItemID, Queue: n.Queue, TimeInQueueMs: n.TimeInQueueMs,
			IsOutbound: n.IsOutbound, Summary: n.Summary, ContentType: "application/json",
			Body: body, BodySHA256: sum, Doc: n.Doc, DocLossy: n.Lossy,
		}
		out = append(out, r)
	}
	return out, nil
}

// phoneLike matches the example payloads' phone numbers in their spellings.
var phoneLike = regexp.MustCompile(`^[+0(][0-9 ()+-]{8,}$`)

// vary makes delivery i of a template look like another call or case, as
// real traffic does: every phone number becomes one of 20,000 callers' and
// every id (a key ending in "id") one of 5,000 cases', customers' or
// conversations'. Otherwise every delivery of a template would name the
// same case and caller: one index page and one caller's lock for all.
func vary(v any, i int) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if s, ok := x.(string); ok && strings.HasSuffix(strings.ToLower(k), "id") && s != "" {
				out[k] = fmt.Sprintf("%s-%d", s, i%5000)
				continue
			}
			out[k] = vary(x, i)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for j, x := range v {
			out[j] = vary(x, i)
		}
		return out
	case string:
		if phoneLike.MatchString(v) {
			return fmt.Sprintf("+4477009%05d", i*7919%20000)
		}
		return v
	default:
		return v
	}
}

func eventOf(kind, file string) string {
	base := strings.TrimSuffix(filepath.Base(file), ".json")
	best := base
	for _, e := range normalize.KnownEvents(normalize.Kind(kind)) {
		if strings.HasPrefix(base, e) && (best == base || len(e) > len(best)) {
			best = e
		}
	}
	return best
}

func avgSize(c []request) int {
	total := 0
	for _, r := range c {
		total += len(r.body)
	}
	return total / max(len(c), 1)
}

func countAttachments(c []request) int {
	n := 0
	for _, r := range c {
		if bytes.Contains(r.body, []byte(`"content"`)) {
			n++
		}
	}
	return n
}

// freshDatabase creates an empty database and migrates it, unless migrate
// is false: another build of the server (-compare-binary) migrates its own,
// to its own schema, when it starts.
func freshDatabase(ctx context.Context, admin, name string, migrate bool) (string, error) {
	err := withConn(ctx, admin, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+name)
		return err
	})
	if err != nil {
		return "", err
	}
	url := dbtest.WithDatabase(admin, name)
	if !migrate {
		return url, nil
	}
	m, err := store.NewMigrator(url)
	if err != nil {
		return "", err
	}
	defer m.Close()
	return url, m.Up(ctx, io.Discard)
}

// counts reads a flag's comma-separated list of positive numbers.
func counts(name, list string) ([]int, error) {
	var out []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// withPool is the database URL u with the pool size n (pool_max_conns),
// which the server's pool reads from it.
func withPool(u string, n int) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	q := parsed.Query()
	q.Set("pool_max_conns", strconv.Itoa(n))
	parsed.RawQuery = q.Encode()
	return parsed.String(), nil
}

// statementLoad stores the corpus's events through the write path's
// statement (store.Ingest) in batches of size, one after another.
func statementLoad(ctx context.Context, url string, corpus []request, size int) (float64, error) {
	return timedLoad(ctx, url, corpus, func(st *store.Store, events []store.NewEvent) error {
		for len(events) > 0 {
			n := min(size, len(events))
			if _, err := st.Ingest(ctx, events[:n]); err != nil {
				return err
			}
			events = events[n:]
		}
		return nil
	})
}

// copyLoad loads the corpus's events by COPY in one statement.
func copyLoad(ctx context.Context, url string, corpus []request) (float64, error) {
	return timedLoad(ctx, url, corpus, func(st *store.Store, events []store.NewEvent) error {
		_, err := st.CopyEvents(ctx, events)
		return err
	})
}

// timedLoad is the rate, in events/s, at which load stores the corpus's
// events in the database at url.
func timedLoad(ctx context.Context, url string, corpus []request, load func(*store.Store, []store.NewEvent) error) (float64, error) {
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	events := make([]store.NewEvent, len(corpus))
	for i := range corpus {
		events[i] = corpus[i].event
	}
	start := time.Now()
	if err := load(st, events); err != nil {
		return 0, err
	}
	return float64(len(events)) / time.Since(start).Seconds(), nil
}

// printStatements prints the statements that took the database's time in
// the database at url, most first.
func printStatements(ctx context.Context, url, what string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `
		SELECT round(total_exec_time)::bigint, calls, rows, mean_exec_time, max_exec_time,
		       regexp_replace(left(regexp_replace(query, '\s+', ' ', 'g'), 90), '^ ', '')
		FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC
		LIMIT 12`)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Printf("\ndatabase time by statement (%s):\n", what)
	fmt.Printf("%10s %9s %9s %8s %8s  %s\n", "total ms", "calls", "rows", "mean ms", "max ms", "statement")
	for rows.Next() {
		var ms, calls, n int64
		var mean, most float64
		var q string
		if err := rows.Scan(&ms, &calls, &n, &mean, &most, &q); err != nil {
			return err
		}
		fmt.Printf("%10d %9d %9d %8.2f %8.1f  %s\n", ms, calls, n, mean, most, q)
	}
	return rows.Err()
}

// eventBytes is what the database at url takes on disk for its events: the
// event partitions' tables, TOAST and indexes, the idempotency keys and the
// attachments.
func eventBytes(ctx context.Context, url string) (int64, error) {
	var n int64
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `
			SELECT sum(pg_total_relation_size(t))::bigint FROM (
				SELECT inhrelid::regclass AS t FROM pg_inherits WHERE inhparent = 'events'::regclass
				UNION ALL VALUES ('idempotency_keys'::regclass), ('blobs'::regclass)
			) parts`).Scan(&n)
	})
	return n, err
}

func countEvents(ctx context.Context, url string) (int64, error) {
	var n int64
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n)
	})
	return n, err
}

type server struct {
	cmd       *exec.Cmd
	addr      string
	pprofAddr string
	stopped   bool
}

// startServer starts a server on the database at dbURL. Every server of a
// bench run shares dir as its data directory, and so one log signing key:
// the servers that share a database must. (The before-hook spool there
// stays empty: the bench's database never goes away.)
func startServer(ctx context.Context, binary, dbURL, dir string, groupCommit bool, workers, parallelBatch int, env []string) (*server, error) {
	cfg := filepath.Join(dir, "bench.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
commit_workers: %d
commit_parallel_batch: %d
sources:
  - {name: case-updates, kind: case-updates, hmac_secret: %q}
  - {name: service-actions, kind: service-actions, hmac_secret: %q}
  - {name: service-hooks, kind: service-hooks, api_keys: [%q]}
read_keys:
  - {name: bench, role: analyst, key: %q}
`, workers, parallelBatch, cuSecret, saSecret, shKey, benchAnalystKey)), 0o600)
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "CASETRAIL_DATA_DIR="+dir,
		"CASETRAIL_GROUP_COMMIT="+strconv.FormatBool(groupCommit), "CASETRAIL_PPROF_LISTEN="+pprofAddr)
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w (build it with `make build`)", binary, err)
	}
	s := &server{cmd: cmd, pprofAddr: pprofAddr}
	buf := make([]byte, 4096)
	var out []byte
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		n, err := stdout.Read(buf)
		out = append(out, buf[:n]...)
		if i := bytes.Index(out, []byte("listening on http://")); i >= 0 {
			rest := out[i+len("listening on http://"):]
			if j := bytes.IndexByte(rest, '\n'); j >= 0 {
				s.addr = string(rest[:j])
				go io.Copy(io.Discard, stdout) //nolint:errcheck
				return s, nil
			}
		}
		if err != nil {
			break
		}
	}
	cmd.Process.Kill() //nolint:errcheck
	return nil, errors.New("the server did not start: " + string(out))
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// profile starts a CPU profile of the server; the returned function waits
// for it and writes it to path.
func (s *server) profile(path string) func() error {
	done := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + s.pprofAddr + "/debug/pprof/profile?seconds=5")
		if err != nil {
			done <- err
			return
		}
		defer res.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(f, res.Body)
		done <- err
	}()
	return func() error { return <-done }
}

// peakRSS is the server's high-water resident set size, in MiB.
func (s *server) peakRSS() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (s *server) stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	return s.cmd.Wait()
}

type row struct {
	mode    string
	round   int
	senders int
	ok      int
	failed  int
	rate    float64
	lat     []time.Duration // every measured acknowledgement's latency
	done    []time.Duration // when each measured acknowledgement came, from the measurement's start
	// The same measurement counted from its first delivery, warm-up
	// included: what -warmup 0 would give.
	wholeRate float64
	wholeLat  []time.Duration
	wholeP99  time.Duration // in summaries
	// With -tail: autovacuum runs and long waits seen during the
	// measurement, and checkpoints.
	background  []span
	checkpoints int64
	wal         map[int]int64 // WAL bytes by the tenth of a second
	p50, p99    time.Duration
	rssMiB      float64
	cpu         cpuUse
}

// cpuTimes are CPU seconds used so far by the server, by every PostgreSQL
// process, and by this load generator, at a wall-clock time.
type cpuTimes struct {
	at                  time.Time
	server, pg, loadGen float64
}

// cpuUse is the cores each used over an interval.
type cpuUse struct{ server, pg, loadGen float64 }

// clockTicks is the kernel's USER_HZ, in which /proc reports CPU time.
const clockTicks = 100

func cpuNow(serverPID int) cpuTimes {
	t := cpuTimes{at: time.Now(), server: procCPU(serverPID)}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			t.pg += procCPU(pid)
		}
	}
	t.loadGen = procCPU(os.Getpid())
	return t
}

// procCPU is a process's user and system CPU seconds.
func procCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

func (t cpuTimes) since(b cpuTimes) cpuUse {
	wall := t.at.Sub(b.at).Seconds()
	return cpuUse{server: (t.server - b.server) / wall, pg: (t.pg - b.pg) / wall, loadGen: (t.loadGen - b.loadGen) / wall}
}

// drive sends every request once with c concurrent senders, each on its own
// keep-alive connection, and records each acknowledgement's latency. The
// requests are serialised (signed, headers and body) beforehand and written
// to the socket directly: the load generator shares the machine's two cores
// with the server and the database, so it must cost as little as it can.
//
// The first warm requests are a warm-up at the same concurrency: they are
// stored and answered like the others, but the measurement starts when the
// first request after them is sent. By then the senders' connections are
// open, the server's batches are full, and the first writes to each page
// since the bench's checkpoint are behind it. The rate counts every 2xx
// answer that came from that moment to the last; the latencies and the
// times of the answers (from that moment, as began is told) are those of
// the requests sent after the warm-up.
func drive(addr string, events []request, warm, c int, began func(time.Time)) row {
	wire := make([][]byte, len(events))
	for i, r := range events {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.path, addr, len(r.body))
		r.header.Write(&b) //nolint:errcheck // writes to a buffer
		b.WriteString("\r\n")
		b.Write(r.body)
		wire[i] = b.Bytes()
	}
	warm = min(warm, len(events))
	measured := warm < len(events)
	var next atomic.Int64
	lat := make([]time.Duration, len(events))
	came := make([]time.Time, len(events))
	status := make([]int, len(events))
	// measureFrom is set, and measuring closed, by the sender that takes
	// the first request after the warm-up (every request is taken once).
	var measureFrom time.Time
	measuring := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	if warm == 0 {
		measureFrom = start
		close(measuring)
	}
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			for {
				i := int(next.Add(1)) - 1
				if i >= len(events) {
					break
				}
				t0 := time.Now()
				if i == warm && warm > 0 {
					measureFrom = t0
					close(measuring)
				}
				status[i] = 0
				if conn == nil {
					var err error
					if conn, err = net.Dial("tcp", addr); err != nil {
						lat[i] = time.Since(t0)
						came[i] = time.Now()
						continue
					}
					br = bufio.NewReaderSize(conn, 4096)
				}
				code, err := roundTrip(conn, br, wire[i])
				came[i] = time.Now()
				lat[i] = came[i].Sub(t0)
				status[i] = code
				if err != nil {
					conn.Close()
					conn = nil
				}
			}
			if conn != nil {
				conn.Close()
			}
		}()
	}
	if measured && began != nil {
		<-measuring
		began(measureFrom)
	}
	wg.Wait()
	r := row{senders: c}
	var last time.Time
	inWindow := 0
	for i, s := range status {
		ok := s >= 200 && s < 300
		if ok {
			r.ok++
		} else {
			r.failed++
		}
		if came[i].After(last) {
			last = came[i]
		}
		if ok && measured && !came[i].Before(measureFrom) {
			inWindow++
		}
	}
	if span := last.Sub(measureFrom); measured && span > 0 {
		r.rate = float64(inWindow) / span.Seconds()
	}
	if span := last.Sub(start); span > 0 {
		r.wholeRate = float64(r.ok) / span.Seconds()
	}
	r.wholeLat = lat
	r.lat = lat[warm:]
	r.done = make([]time.Duration, len(events)-warm)
	for i := range r.done {
		r.done[i] = came[warm+i].Sub(measureFrom)
	}
	return r
}

// roundTrip writes one serialised request and reads its response, returning
// the status code. An error means the connection is no longer usable.
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (int, error) {
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.Close {
		err = errors.New("server closed the connection")
	}
	return res.StatusCode, err
}

// summarise is one row per mode and level: the median over the rounds of
// the rate and of the cores used, and the latency percentiles of every
// acknowledgement of every round.
func summarise(rows []row, levels []int, modes []string) []row {
	var out []row
	for _, mode := range modes {
		for _, c := range levels {
			var rates, wholeRates, server, pg, gen []float64
			var lat, wholeLat []time.Duration
			s := row{mode: mode, senders: c}
			for _, r := range rows {
				if r.mode != mode || r.senders != c {
					continue
				}
				rates, server, pg, gen = append(rates, r.rate), append(server, r.cpu.server), append(pg, r.cpu.pg), append(gen, r.cpu.loadGen)
				lat, wholeLat = append(lat, r.lat...), append(wholeLat, r.wholeLat...)
				wholeRates = append(wholeRates, r.wholeRate)
				s.ok, s.failed, s.rssMiB = s.ok+r.ok, s.failed+r.failed, r.rssMiB
			}
			if len(rates) == 0 {
				continue
			}
			s.rate, s.p50, s.p99 = median(rates), percentile(lat, 50), percentile(lat, 99)
			s.wholeRate, s.wholeP99 = median(wholeRates), percentile(wholeLat, 99)
			s.cpu = cpuUse{server: median(server), pg: median(pg), loadGen: median(gen)}
			out = append(out, s)
		}
	}
	return out
}

// printWhole prints the summary's rates, ratios and p99 counted from each
// measurement's first delivery, warm-up included, as -warmup 0 would have
// measured them: the cost of starting cold, right after a checkpoint.
func printWhole(copyRates []float64, rows []row) {
	fmt.Printf("\nthe same, counted from each measurement's first delivery, warm-up included:\n")
	copyRate := median(copyRates)
	vsNaive := naiveRatio(rows, func(r row) float64 { return r.wholeRate })
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tsenders\tevents/s\tx COPY\tx naive\tp99 ms\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%.2f\t%s\t%.2f\t\n", r.mode, r.senders, r.wholeRate, r.wholeRate/copyRate, vsNaive(r), ms(r.wholeP99))
	}
	w.Flush()
}

// naiveRatio gives, for a summary row, its rate over the naive server's at
// the same level, as the tables print it ("-" for the naive rows).
func naiveRatio(rows []row, rate func(row) float64) func(row) string {
	naive := map[int]float64{}
	for _, r := range rows {
		if r.mode == naiveMode {
			naive[r.senders] = rate(r)
		}
	}
	return func(r row) string {
		if r.mode == naiveMode || naive[r.senders] <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", rate(r)/naive[r.senders])
	}
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the p-th percentile of d, which it leaves unsorted.
func percentile(d []time.Duration, p int) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)*p/100]
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func printTable(copyRates []float64, rows []row, n, warmup, rounds int) {
	copyRate := median(copyRates)
	vsNaive := naiveRatio(rows, func(r row) float64 { return r.rate })
	fmt.Printf("\nCOPY of %d events in one statement: %.0f events/s (median of %d)\n", n, copyRate, rounds)
	fmt.Printf("each level: %d deliveries per round after %d of warm-up, %d rounds; events/s and cores are medians, latencies over all rounds\n\n", n, warmup, rounds)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tsenders\tevents/s\tx COPY\tx naive\tp50 ms\tp99 ms\tnon-2xx\tpeak RSS MiB\tcores: server\tpostgres\tload gen\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%.2f\t%s\t%.2f\t%.2f\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t\n", r.mode, r.senders, r.rate, r.rate/copyRate,
			vsNaive(r), ms(r.p50), ms(r.p99), r.failed, r.rssMiB,
			r.cpu.server, r.cpu.pg, r.cpu.loadGen)
	}
	w.Flush()
}

// printRounds prints every round's rates, so that the medians hide nothing.
func printRounds(copyRates []float64, rows []row, levels []int, modes []string) {
	fmt.Printf("\nevents/s in each round:\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "COPY\t\t%s\t\n", joinRates(copyRates))
	for _, mode := range modes {
		for _, c := range levels {
			var rates []float64
			for _, r := range rows {
				if r.mode == mode && r.senders == c {
					rates = append(rates, r.rate)
				}
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t\n", mode, c, joinRates(rates))
		}
	}
	w.Flush()
	// The table's p99 pools every round's acknowledgements, so that a slow
	// round weighs in it as the machine's slow spells would in production;
	// each round's own shows whether one spell made it.
	fmt.Printf("\np99 ms in each round:\n")
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, mode := range modes {
		for _, c := range levels {
			var p99s []string
			for _, r := range rows {
				if r.mode == mode && r.senders == c && len(r.lat) > 0 {
					p99s = append(p99s, strconv.FormatFloat(ms(percentile(r.lat, 99)), 'f', 1, 64))
				}
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t\n", mode, c, strings.Join(p99s, "  "))
		}
	}
	w.Flush()
	// The same round's COPY and naive rates were measured minutes apart at
	// most, so these ratios follow the machine's changing speed.
	fmt.Printf("\nratios within each round:\n")
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, mode := range modes {
		if mode == naiveMode {
			continue
		}
		for _, c := range levels {
			vsCopy := roundRatios(rows, mode, c, func(r row) float64 { return copyRates[r.round] })
			vsNaive := roundRatios(rows, mode, c, naiveOf(rows))
			fmt.Fprintf(w, "%s\t%d\tx COPY\t%s\t(median %.2f)\tx naive\t%s\t(median %.2f)\t\n", mode, c,
				joinRatios(vsCopy), median(vsCopy), joinRatios(vsNaive), median(vsNaive))
		}
	}
	w.Flush()
}

func joinRatios(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(s, "  ")
}

func joinRates(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, "  ")
}
