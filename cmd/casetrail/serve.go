package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/httpapi"
	"github.com/casetrail/casetrail/internal/ingest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/localpg"
	"github.com/casetrail/casetrail/internal/spool"
	"github.com/casetrail/casetrail/internal/store"
)

// loadConfig parses --config (or CASETRAIL_CONFIG) for a subcommand that
// takes no other flag, and returns its positional words.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*config.Config, []string, error) {
	fs := newFlagSet(name, stderr)
	path := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	words, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return nil, nil, err
	}
	return cfg, words, nil
}

// parseFlags parses args with fs, taking flags before, between and after
// the positional words (`migrate status --config FILE`), which it returns in
// order. The flag package alone stops at the first positional word and
// leaves the flags after it unread; "--" still ends the flags.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return words, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(words, rest...), nil
		}
		words = append(words, rest[0])
		args = rest[1:]
	}
}

// noWords refuses positional words given to a command that takes none,
// rather than ignoring them.
func noWords(words []string, usage string) error {
	if len(words) > 0 {
		return fmt.Errorf("unexpected %q; usage: %s", words[0], usage)
	}
	return nil
}

// database returns the owner URL to use: the configured one, or a local
// PostgreSQL started under the data directory (stopped by the returned
// function).
func database(ctx context.Context, cfg *config.Config, log *slog.Logger) (string, func(), error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, func() {}, nil
	}
	srv, err := localpg.Start(ctx, localpg.Options{DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return "", nil, fmt.Errorf("local PostgreSQL: %w", err)
	}
	stop := func() {
		if err := srv.Stop(context.WithoutCancel(ctx)); err != nil {
			log.Error("stopping local PostgreSQL", "err", err)
		}
	}
	if err := ensureDatabase(ctx, srv, "casetrail"); err != nil {
		stop()
		return "", nil, err
	}
	return srv.URL("casetrail"), stop, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var level slog.Level
	if v := getenv("CASETRAIL_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("CASETRAIL_LOG_LEVEL: %q is not debug, info, warn or error", v)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, words, err := loadConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := noWords(words, "casetrail serve [--config FILE]"); err != nil {
		return err
	}
	config.TuneGC(getenv)
	if cfg.Dev {
		dc, err := cfg.UseDevCredentials()
		if err != nil {
			return fmt.Errorf("development credentials: %w", err)
		}
		printDevCredentials(stdout, dc)
	}
	// A configuration that takes no events and answers no reads is not
	// refused (the server still answers health checks and metrics), but said
	// loudly: at start and in /readyz.
	warnings := cfg.Warnings()
	for _, w := range warnings {
		log.Warn(w)
	}

	// What can be checked without the database is checked before the
	// migrations run: a mistake found after them would leave the schema
	// upgraded under the servers of the earlier version, and this one not
	// serving.
	for name, addr := range map[string]string{"listen": cfg.Listen, "pprof_listen": cfg.PprofListen} {
		if _, err := net.ResolveTCPAddr("tcp", addr); addr != "" && err != nil {
			return fmt.Errorf("%s %q: %w", name, addr, err)
		}
	}
	if cfg.ReportDatabaseURL != "" {
		if err := store.CheckURL(cfg.ReportDatabaseURL); err != nil {
			return fmt.Errorf("report_database_url: %w", err)
		}
	}
	keys, err := ledger.LoadKeys(cfg.LogSigningKey, cfg.DataDir, cfg.LogOrigin)
	if err != nil {
		return err
	}
	if err := keys.WithPrevious(cfg.LogPreviousKeys); err != nil {
		return err
	}

	url, stopDB, err := database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopDB()

	if err := migrateUp(ctx, url, log); err != nil {
		return err
	}
	st, err := store.Open(ctx, url, store.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("database pool", "max_conns", st.MaxConns())
	if err := ensurePartitionsAtStart(ctx, st, log); err != nil {
		return fmt.Errorf("creating partitions: %w", err)
	}
	go maintainPartitions(ctx, st, log)

	// Reports read from the report database when one is configured (a
	// streaming replica); until it answers they get 503, and ingest goes on.
	var reports httpapi.Reports = st
	var reportDown func() bool
	if cfg.ReportDatabaseURL != "" {
		rst, err := store.Open(ctx, cfg.ReportDatabaseURL, store.Options{Logger: log, ReadOnly: true})
		if err != nil {
			return fmt.Errorf("report database: %w", err)
		}
		defer rst.Close()
		reports, reportDown = rst, watchReportDatabase(ctx, st, rst, log)
	}

	if fsync, err := st.Setting(ctx, "fsync"); err == nil && fsync == "off" {
		warnings = append(warnings, "the database server runs with fsync=off: acknowledged events can be lost in a crash of its machine")
		log.Warn("database runs with fsync=off; acknowledged events are not crash-safe")
	}

	seq := &ledger.Sequencer{Store: st, Log: log}
	checkpointer := &ledger.Checkpointer{Store: st, Keys: keys, Origin: cfg.LogOrigin,
		Every: time.Duration(cfg.CheckpointInterval), MaxAge: time.Hour}
	// A server with a key of its own (a second server given a data_dir
	// but not the first one's key, or a lost key) signs no checkpoint. It
	// still takes and sequences events; a server with the log's key signs
	// them.
	if err := checkpointer.CheckKey(ctx); errors.Is(err, ledger.ErrForeignKey) {
		log.Error("this server signs no checkpoints", "err", err) // and /readyz says so
	} else if errors.Is(err, ledger.ErrForeignLog) {
		log.Error("this server signs no checkpoints", "err", err)
		warnings = append(warnings, "this server signs no checkpoints: its log_origin is not the stored ones' log")
	} else if err != nil {
		log.Warn("could not compare the log signing key with the stored checkpoints", "err", err)
	}
	seqCtx, stopSeq := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSeq()
	seqDone := make(chan struct{})
	go func() {
		defer close(seqDone)
		seq.Run(seqCtx, time.Duration(cfg.SequenceInterval), checkpointer)
	}()

	// Every event goes through one write path; group commit shares
	// transactions between concurrent requests.
	var writer ingest.Writer = st
	var batcher *store.Batcher
	if *cfg.GroupCommit {
		batcher = store.NewBatcher(st, store.BatchOptions{Committers: cfg.CommitWorkers, ParallelBatch: cfg.CommitParallelBatch, MaxBatch: cfg.CommitMaxBatch, Pipeline: *cfg.CommitPipeline})
		writer = batcher
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ingestSvc := ingest.NewService(cfg, writer, st, ingest.NewMetrics(reg))
	spoolDir := filepath.Join(cfg.DataDir, "spool")
	if cfg.BeforeHooksOnOutage == "spool" || spool.Holds(spoolDir) {
		sp, err := spool.Open(spoolDir)
		if err != nil {
			return fmt.Errorf("before-hook spool: %w", err)
		}
		defer sp.Close()
		if cfg.BeforeHooksOnOutage == "spool" {
			ingestSvc.SpoolBeforeHooks(sp, 150*time.Millisecond)
		} else {
			// Hooks spooled under an earlier configuration were
			// acknowledged: they are stored, though no new ones are spooled.
			ingestSvc.DrainOnly(sp)
			log.Warn("before_hooks_on_outage is fail, but the spool holds hooks acknowledged while it was spool; storing them",
				"spooled", sp.Len())
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "casetrail_spool_events",
			Help: "Before-hook events waiting in the local spool for the database.",
		}, func() float64 { return float64(ingestSvc.Spooled()) }))
		go drainSpool(seqCtx, ingestSvc, log)
	}
	draining := &atomic.Bool{}
	handler := httpapi.NewServer(httpapi.Deps{
		Config:     cfg,
		Ingest:     ingestSvc,
		Ready:      st,
		Reads:      st,
		Reports:    reports,
		ReportDown: reportDown,
		Ledger:     &ledger.Service{Store: st, Keys: keys, Checkpointer: checkpointer},
		Logger:     log,
		Registry:   reg,
		Draining:   draining,
		Warnings:   warnings,
	})

	if cfg.PprofListen != "" {
		go servePprof(cfg.PprofListen, log)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// A 32 MiB body over a slow link still fits; a stalled sender does not
		// hold a connection for ever.
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 2 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "casetrail listening on http://%s\n", displayAddr(ln.Addr()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	// Stop being ready first, still serving for shutdown_delay so that a
	// load balancer probing /readyz sees it, then let in-flight requests
	// finish.
	draining.Store(true)
	if d := time.Duration(cfg.ShutdownDelay); d > 0 {
		log.Info("shutting down: /readyz says draining; serving on meanwhile", "delay", d.String())
		time.Sleep(d)
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		// A reader slower than the timeout (a long NDJSON export) is cut
		// off; the log's last round and checkpoint still get their time.
		srv.Close() //nolint:errcheck
		cancel()
		shutdownCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.ShutdownTimeout))
		defer cancel()
	}
	if n, err := ingestSvc.DrainSpool(shutdownCtx); err != nil {
		log.Warn("spooled before-hooks stay in the spool for the next start", "err", err)
	} else if n > 0 {
		log.Info("drained the before-hook spool", "events", n)
	}
	if batcher != nil {
		batcher.Close()
	}
	// Sequence what was acknowledged last, then stop the sequencer.
	stopSeq()
	<-seqDone
	if err := seq.Drain(shutdownCtx); err != nil {
		log.Warn("final sequencing", "err", err)
	} else if err := checkpointer.SignIfGrown(shutdownCtx); err != nil {
		log.Warn("final checkpoint", "err", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("profiler listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("profiler", "err", err)
	}
}

// drainSpool commits spooled before-hooks once the database takes them
// again (also those left by a previous run).
func drainSpool(ctx context.Context, svc *ingest.Service, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if svc.Spooled() > 0 {
			if n, err := svc.DrainSpool(ctx); err != nil {
				log.Warn("before-hook spool waits for the database", "spooled", svc.Spooled(), "err", err)
			} else {
				log.Info("drained the before-hook spool", "events", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchReportDatabase checks that the report database answers and carries
// this binary's migrations, at once and then every 5 seconds until ctx ends,
// and logs each change. The answer is for /readyz: it reads the last one, so
// a replica that does not answer never slows a health check down.
func watchReportDatabase(ctx context.Context, st, rst *store.Store, log *slog.Logger) (down func() bool) {
	var isDown atomic.Bool
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := rst.Ready(cctx)
		if err == nil {
			err = sameDatabase(cctx, st, rst)
		}
		if ctx.Err() != nil {
			return
		}
		switch wasDown := isDown.Swap(err != nil); {
		case err != nil && !wasDown:
			log.Warn("report database not ready: reports answer 503 until it is", "err", err)
		case err == nil && wasDown:
			log.Info("report database ready again: reports read from it")
		}
	}
	if check(); !isDown.Load() {
		log.Info("reports read from the report database")
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				check()
			}
		}
	}()
	return isDown.Load
}

// sameDatabase is nil when the report database is a copy of the store's
// (a streaming replica): one set to another database would answer every
// report with nothing, and is taken for down. A primary it cannot ask is
// no reason to stop reports.
func sameDatabase(ctx context.Context, st, rst *store.Store) error {
	want, err := st.Identity(ctx)
	if err != nil {
		return nil
	}
	got, err := rst.Identity(ctx)
	if err != nil {
		return err
	}
	if got != want {
		return errors.New("report_database_url names another database than database_url's (its events table is another object): it must be a streaming replica of it")
	}
	return nil
}

// ensurePartitionsAtStart creates the coming months' partitions, waiting
// out a database that is briefly unreachable (a restart, a failover) for up
// to 30 seconds rather than exiting.
func ensurePartitionsAtStart(ctx context.Context, st *store.Store, log *slog.Logger) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := st.EnsurePartitions(ctx, time.Now())
		if err == nil || !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		log.Warn("creating partitions: waiting for the database", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func maintainPartitions(ctx context.Context, st *store.Store, log *slog.Logger) {
	t := time.NewTicker(6 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := st.EnsurePartitions(ctx, now); err != nil {
				log.Error("creating partitions", "err", err)
			} else if n > 0 {
				log.Info("created event partitions", "count", n)
			}
		}
	}
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if ok && tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return a.String()
}

func printDevCredentials(w io.Writer, dc *config.DevCredentials) {
	fmt.Fprintf(w, `casetrail is running without a configuration file: development credentials
(kept in the data directory; configure real ones with --config for production)

  ingest  case-updates     x-cv-signature: hex HMAC-SHA256 of the body, secret %s
  ingest  service-actions  Authorization: HMAC <base64 HMAC-SHA256>, secret %s
  ingest  service-hooks    x-api-key: %s
  read    analyst          Authorization: Bearer %s
  read    auditor          Authorization: Bearer %s
  read    admin            Authorization: Bearer %s

`, dc.CaseUpdatesSecret, dc.ServiceActionsSecret, dc.ServiceHooksKey, dc.AnalystKey, dc.AuditorKey, dc.AdminKey)
}
