package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/internal/localpg"
)

// benchAnalystKey is the analyst read key of the bench's servers.
const benchAnalystKey = "bench-analyst-key-0123456789"

// scaleReport is the report the analyst re-runs during -scale: every abandon
// the bench stores, week by week and by queue.
func scaleReport() string {
	to := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	return "/v1/reports/abandonment?from=2024-01-01T00:00:00Z&to=" + to + "T00:00:00Z&interval=P1W&groupBy=queue"
}

// runScale measures what docs/scaling.md reports, on one PostgreSQL with
// durable settings and, for the reports, a hot standby of it:
//
//  1. one group-commit server against two sharing one database, with the
//     same senders split between them;
//  2. ingest through one server while an analyst re-runs the abandonment
//     report back to back: no report, reports on the primary, reports from
//     a server whose report_database_url is the standby.
//
// Every round measures each case once, in turn; medians over the rounds.
func runScale(ctx context.Context, o options) error {
	senders := o.scaleSenders
	perRun := o.warmup + o.events
	// Each round: one server, two servers, and ingest beside no reports,
	// reports on the primary and reports from the standby.
	const runsPerRound = 5
	corpus, err := buildCorpus(o.testdataDir, o.history+perRun*runsPerRound*o.rounds)
	if err != nil {
		return err
	}
	history, corpus := corpus[:o.history], corpus[o.history:]
	take := func() []request {
		r := corpus[:perRun]
		corpus = corpus[perRun:]
		return r
	}
	fmt.Printf("corpus: %d events, average body %d bytes; %d senders; %d rounds\n",
		o.history+perRun*runsPerRound*o.rounds, avgSize(history), senders, o.rounds)

	dir, err := os.MkdirTemp("", "casetrail-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	settings := durableSettings()
	pg, err := localpg.Start(ctx, localpg.Options{DataDir: dir + "/primary", Settings: settings})
	if err != nil {
		return err
	}
	defer pg.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	admin := pg.URL("postgres")

	singleURL, err := freshDatabase(ctx, admin, "scale_single", true)
	if err != nil {
		return err
	}
	pairURL, err := freshDatabase(ctx, admin, "scale_pair", true)
	if err != nil {
		return err
	}
	reportURL, err := freshDatabase(ctx, admin, "scale_reports", true)
	if err != nil {
		return err
	}
	// The reports' database holds a history first, stored through the
	// write path's statement, so that the report has abandons to read.
	loadStart := time.Now()
	if _, err := statementLoad(ctx, reportURL, history, 256); err != nil {
		return err
	}
	fmt.Printf("history: %d events stored in %.1f s\n", len(history), time.Since(loadStart).Seconds())

	var servers []*server
	start := func(dbURL string, env ...string) (*server, error) {
		s, err := startServer(ctx, o.binary, dbURL, dir, true, o.workers, o.parallelBatch, env)
		if err == nil {
			servers = append(servers, s)
		}
		return s, err
	}
	defer func() {
		for _, s := range servers {
			s.stop() //nolint:errcheck
		}
	}()
	single, err := start(singleURL)
	if err != nil {
		return err
	}
	pairA, err := start(pairURL)
	if err != nil {
		return err
	}
	pairB, err := start(pairURL)
	if err != nil {
		return err
	}

	var one, two, noReports, onPrimary, fromStandby scaleResult
	// The 2xx answers each database has given, to compare with what it
	// stores.
	answered := map[string]int64{"scale_single": 0, "scale_pair": 0, "scale_reports": int64(len(history))}
	// 1. One server, then two sharing a database.
	for range o.rounds {
		if err := checkpoint(ctx, admin); err != nil {
			return err
		}
		r := drive(single.addr, take(), o.warmup, senders, nil)
		one.add(r)
		answered["scale_single"] += int64(r.ok)
		if err := waitSequenced(ctx, singleURL); err != nil {
			return err
		}
		if err := checkpoint(ctx, admin); err != nil {
			return err
		}
		events := take()
		half := len(events) / 2
		var ra, rb row
		var wg sync.WaitGroup
		wg.Go(func() { ra = drive(pairA.addr, events[:half], o.warmup/2, senders/2, nil) })
		wg.Go(func() { rb = drive(pairB.addr, events[half:], o.warmup-o.warmup/2, senders-senders/2, nil) })
		wg.Wait()
		// Both halves ran at once: the pair's rate is their sum.
		ra.rate += rb.rate
		ra.lat = append(ra.lat, rb.lat...)
		two.add(ra)
		answered["scale_pair"] += int64(ra.ok + rb.ok)
		if err := waitSequenced(ctx, pairURL); err != nil {
			return err
		}
	}

	for _, s := range []*server{single, pairA, pairB} {
		if err := s.stop(); err != nil {
			return err
		}
	}

	// 2. Ingest with an analyst's reports on the side. The standby exists
	// from here on: it replays every database's WAL, on the same cores.
	standby, err := localpg.StartStandby(ctx, pg, localpg.Options{DataDir: dir + "/standby", Settings: settings})
	if err != nil {
		return err
	}
	defer standby.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	standbyURL := standby.URL("scale_reports")
	ingestSrv, err := start(reportURL)
	if err != nil {
		return err
	}
	replicaSrv, err := start(reportURL, "CASETRAIL_REPORT_DATABASE_URL="+standbyURL)
	if err != nil {
		return err
	}
	if err := waitSequenced(ctx, reportURL); err != nil {
		return err
	}
	for range o.rounds {
		for _, c := range []struct {
			res *scaleResult
			srv *server // the analyst's; nil: none
		}{{&noReports, nil}, {&onPrimary, ingestSrv}, {&fromStandby, replicaSrv}} {
			if err := checkpoint(ctx, admin); err != nil {
				return err
			}
			res := c.res
			stop := make(chan struct{})
			var reports sync.WaitGroup
			if c.srv != nil {
				reports.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						t0 := time.Now()
						status, err := fetch(c.srv.addr, scaleReport())
						if err != nil || status != http.StatusOK {
							res.non200++
							time.Sleep(100 * time.Millisecond) // an analyst retries, not in a tight loop
							continue
						}
						res.reports = append(res.reports, time.Since(t0))
					}
				})
			}
			r := drive(ingestSrv.addr, take(), o.warmup, senders, nil)
			close(stop)
			reports.Wait()
			lag, err := replayLagKB(ctx, admin)
			if err != nil {
				return err
			}
			res.add(r)
			res.lagKB = append(res.lagKB, lag)
			answered["scale_reports"] += int64(r.ok)
			if err := waitSequenced(ctx, reportURL); err != nil {
				return err
			}
		}
	}

	for _, s := range servers {
		if err := s.stop(); err != nil {
			return err
		}
	}
	for _, name := range []string{"scale_single", "scale_pair", "scale_reports"} {
		n, err := countEvents(ctx, pg.URL(name))
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d answers 2xx (and events of the history), %d events stored: %s\n", name, answered[name], n, verdict(n == answered[name]))
		if n != answered[name] {
			return fmt.Errorf("%s: stored events (%d) differ from 2xx answers (%d)", name, n, answered[name])
		}
	}

	fmt.Printf("\nscale-out: %d senders over HTTP, group commit, one database (medians of %d rounds)\n", senders, o.rounds)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "servers\tevents/s\tx one server\tp50 ms\tp99 ms\trounds, events/s\t")
	for _, r := range []struct {
		name string
		*scaleResult
	}{{"1 server", &one}, {"2 servers", &two}} {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t\n", r.name, median(r.rates), median(r.rates)/median(one.rates),
			ms(percentile(r.lat, 50)), ms(percentile(r.lat, 99)), joinRates(r.rates))
	}
	w.Flush()

	fmt.Printf("\ningest at %d senders into a store of %d events or more, while one analyst re-runs %s back to back\n",
		senders, len(history), scaleReport())
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "reports\tingest events/s\tx no reports\tingest p99 ms\treports run\treport p50 ms\treport p99 ms\tnot 200\tstandby behind, kB\t")
	for _, r := range []struct {
		name string
		*scaleResult
	}{{"no reports", &noReports}, {"reports on the primary", &onPrimary}, {"reports from the standby", &fromStandby}} {
		p50, p99 := "-", "-"
		if len(r.reports) > 0 {
			p50, p99 = fmt.Sprintf("%.1f", ms(percentile(r.reports, 50))), fmt.Sprintf("%.1f", ms(percentile(r.reports, 99)))
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t%d\t%.0f\t\n", r.name, median(r.rates), median(r.rates)/median(noReports.rates),
			ms(percentile(r.lat, 99)), len(r.reports), p50, p99, r.non200, median(r.lagKB))
	}
	return w.Flush()
}

// scaleResult gathers one -scale case's measurements over the rounds.
type scaleResult struct {
	rates   []float64
	lat     []time.Duration // every measured acknowledgement's latency
	reports []time.Duration // the analyst's reports that answered 200
	non200  int             // and those that did not
	lagKB   []float64       // the standby's replay lag at each measurement's end
}

func (s *scaleResult) add(r row) {
	s.rates = append(s.rates, r.rate)
	s.lat = append(s.lat, r.lat...)
}

// reportClient bounds a report request, so that a report that hangs ends
// the measurement's analyst rather than the bench.
var reportClient = &http.Client{Timeout: 2 * time.Minute}

// fetch GETs path from the server at addr as the bench's analyst and reads
// the whole answer.
func fetch(addr, path string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+benchAnalystKey)
	res, err := reportClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// replayLagKB is how far the standby's replay is behind the primary's WAL,
// in kB, as the primary sees it.
func replayLagKB(ctx context.Context, admin string) (float64, error) {
	var kb float64
	err := withConn(ctx, admin, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::float8 / 1024
			FROM pg_stat_replication`).Scan(&kb)
	})
	return kb, err
}
