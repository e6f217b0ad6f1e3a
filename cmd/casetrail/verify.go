package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

func runKeys(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("keys", args, getenv, stderr)
	if err != nil {
		return err
	}
	keys, err := ledger.LoadKeys(cfg.LogSigningKey, cfg.DataDir, cfg.LogOrigin)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, keys.VerifierKey)
	return nil
}

// runVerify recomputes the log from the stored rows and checks it against a
// signed checkpoint: the given file, or the newest stored one.
func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	cpPath := fs.String("checkpoint", "", "a signed checkpoint to verify against (default: the newest stored)")
	vkey := fs.String("key", "", "the verifier key (default: this server's, from its configuration or data directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, getenv)
	if err != nil {
		return err
	}
	var verifier note.Verifier
	if *vkey != "" {
		verifier, err = note.NewVerifier(*vkey)
	} else {
		var keys *ledger.Keys
		keys, err = ledger.LoadKeys(cfg.LogSigningKey, cfg.DataDir, cfg.LogOrigin)
		if keys != nil {
			verifier = keys.Verifier
		}
	}
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	var trusted []byte
	if *cpPath != "" {
		if trusted, err = os.ReadFile(*cpPath); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	url, stopDB, err := database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopDB()
	st, err := store.Open(ctx, url, store.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := ledger.Verify(ctx, st, verifier, trusted)
	var f *ledger.Finding
	if errors.As(err, &f) {
		fmt.Fprintln(stdout, "FAILED:", f.Error())
		return errors.New("verification failed")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %d leaves recomputed from the stored rows match the checkpoint signed for %q at size %d; %d stored checkpoints are consistent\n",
		rep.Leaves, rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoints)
	return nil
}
