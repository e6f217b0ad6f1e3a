package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

func runKeys(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, words, err := loadConfig("keys", args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := noWords(words, "casetrail keys [--config FILE]"); err != nil {
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
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noWords(words, "casetrail verify [--checkpoint FILE] [--key VKEY] [--config FILE]"); err != nil {
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
	st, closeStore, err := openStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
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

// runExport writes an audit bundle of a case's events or of the events
// received in a time range.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	caseID := fs.String("case", "", "export this case's events")
	from := fs.String("from", "", "export events received from this time (RFC 3339)")
	to := fs.String("to", "", "...until this time (RFC 3339, exclusive)")
	out := fs.String("out", "", "the bundle's directory")
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	const usage = "casetrail export (--case ID | --from T --to T) --out DIR [--config FILE]"
	if err := noWords(words, usage); err != nil {
		return err
	}
	if *out == "" || (*caseID == "") == (*from == "" || *to == "") {
		return errors.New("usage: " + usage)
	}
	cfg, err := config.Load(*cfgPath, getenv)
	if err != nil {
		return err
	}
	keys, err := ledger.LoadKeys(cfg.LogSigningKey, cfg.DataDir, cfg.LogOrigin)
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	var ids []int64
	if *caseID != "" {
		ids, err = st.LoggedEventsOfCase(ctx, *caseID)
	} else {
		f, ferr := time.Parse(time.RFC3339Nano, *from)
		t, terr := time.Parse(time.RFC3339Nano, *to)
		if ferr != nil || terr != nil {
			return errors.New("--from and --to take RFC 3339 times")
		}
		ids, err = st.LoggedEventsReceived(ctx, f, t)
	}
	if err != nil {
		return err
	}
	n, err := ledger.Export(ctx, st, keys, ids, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %d events with inclusion proofs to %s\n", n, *out)
	return nil
}

// runVerifyBundle checks a bundle offline with only the verifier key.
func runVerifyBundle(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify-bundle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vkey := fs.String("key", "", "the log's verifier key (default: the bundle's key.txt, which proves nothing on its own)")
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 {
		return errors.New("usage: casetrail verify-bundle [--key VKEY] DIR")
	}
	dir := words[0]
	key := *vkey
	if key == "" {
		raw, err := os.ReadFile(filepath.Join(dir, "key.txt"))
		if err != nil {
			return err
		}
		key = strings.TrimSpace(string(raw))
		fmt.Fprintln(stderr, "warning: using the bundle's own key.txt; pass --key with a copy you trust")
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	n, err := ledger.VerifyBundle(dir, v)
	if err != nil {
		fmt.Fprintln(stdout, "FAILED:", err)
		return errors.New("bundle verification failed")
	}
	fmt.Fprintf(stdout, "OK: %d events match their bodies and are in the signed log\n", n)
	return nil
}

// openStore connects an operator command to the configured database (or the
// local one of the data directory); only warnings are logged.
func openStore(ctx context.Context, cfg *config.Config, stderr io.Writer) (*store.Store, func(), error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	url, stopDB, err := database(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, url, store.Options{Logger: log})
	if err != nil {
		stopDB()
		return nil, nil, err
	}
	return st, func() { st.Close(); stopDB() }, nil
}
