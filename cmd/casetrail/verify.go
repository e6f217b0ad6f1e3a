package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// runKeys prints the log's verifier key for auditors: only a key that
// signed the stored checkpoints (any, before the first one is signed),
// since another verifies nothing the log holds. --all prints the keys of
// the whole chain, oldest first; --new makes a new signing key for a
// rotation.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys", stderr)
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	all := fs.Bool("all", false, "print every verifier key of the log, oldest first: log_previous_keys, then the current one")
	fresh := fs.Bool("new", false, "print a new log signing key (a secret) for a rotation, and its verifier key on standard error")
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noWords(words, keysUsage); err != nil {
		return err
	}
	if *fresh {
		var cfg *config.Config
		if *cfgPath != "" {
			cfg, err = config.LoadLog(*cfgPath, getenv)
		} else {
			cfg, err = config.Load("", getenv)
		}
		if err != nil {
			return err
		}
		skey, vkey, err := ledger.GenerateSigningKey(cfg.LogOrigin)
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "verifier key:", vkey)
		fmt.Fprintln(stdout, skey)
		return nil
	}
	_, keys, _, closeStore, err := openSigner(ctx, *cfgPath, getenv, stderr, false)
	if err != nil {
		return err
	}
	closeStore()
	if *all {
		for _, k := range keys.PreviousKeys {
			fmt.Fprintln(stdout, k)
		}
	}
	fmt.Fprintln(stdout, keys.VerifierKey)
	return nil
}

const keysUsage = "casetrail keys [--all | --new] [--config FILE]"

// logKeys opens the log's keys as configured: log_signing_key (or the
// data directory's) and log_previous_keys.
func logKeys(cfg *config.Config) (*ledger.Keys, error) {
	keys, err := ledger.OpenKeys(cfg.LogSigningKey, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := keys.WithPrevious(cfg.LogPreviousKeys); err != nil {
		return nil, err
	}
	return keys, nil
}

// keyFlags collects repeated --key flags: verifier keys, oldest first.
type keyFlags []string

func (k *keyFlags) String() string { return strings.Join(*k, " ") }

func (k *keyFlags) Set(v string) error {
	*k = append(*k, v)
	return nil
}

// runVerify recomputes the log from the stored rows and checks it against a
// signed checkpoint: the given file, or the newest stored one.
func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	cpPath := fs.String("checkpoint", "", "a signed checkpoint to verify against (default: the newest stored)")
	var vkeys keyFlags
	fs.Var(&vkeys, "key", "a verifier key of the log; repeat it for each key of a rotated log, oldest first (default: this server's, with its log_previous_keys)")
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noWords(words, "casetrail verify [--checkpoint FILE] [--key VKEY ...] [--config FILE]"); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, getenv)
	if err != nil {
		return err
	}
	var chain ledger.KeyChain
	if len(vkeys) > 0 {
		chain, err = ledger.ParseKeyChain(vkeys...)
	} else {
		var keys *ledger.Keys
		keys, err = logKeys(cfg)
		if keys != nil {
			chain = keys.Chain()
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
	st, closeStore, err := openStore(ctx, cfg, stderr, false)
	if err != nil {
		return err
	}
	defer closeStore()
	rep, err := ledger.Verify(ctx, st, chain, trusted)
	if err == nil && rep.Checkpoint.Origin != cfg.LogOrigin {
		err = &ledger.Finding{Kind: "checkpoint", Detail: otherLog(rep.Checkpoint.Origin, cfg.LogOrigin)}
	}
	var f *ledger.Finding
	if errors.As(err, &f) {
		fmt.Fprintln(stdout, "FAILED:", f.Error())
		return errors.New("verification failed")
	}
	if err != nil {
		return err
	}
	if rep.Leaves > rep.Checkpoint.Size {
		fmt.Fprintf(stdout, "OK: %d leaves recomputed from the stored rows; the first %d match the checkpoint signed for %q at size %d, and the log extends it; %d stored checkpoints are consistent\n",
			rep.Leaves, rep.Checkpoint.Size, rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoints)
	} else {
		fmt.Fprintf(stdout, "OK: %d leaves recomputed from the stored rows match the checkpoint signed for %q at size %d; %d stored checkpoints are consistent\n",
			rep.Leaves, rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoints)
	}
	return nil
}

// otherLog says that a checkpoint names another log than the configured one.
func otherLog(origin, configured string) string {
	return fmt.Sprintf("the checkpoint is of the log %q, not of %q (log_origin of the configuration)", origin, configured)
}

// runExport writes an audit bundle of a case's events or of the events
// received in a time range.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr)
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	caseID := fs.String("case", "", "export this case's events")
	from := fs.String("from", "", "export events received from this time (RFC 3339)")
	to := fs.String("to", "", "...until this time (RFC 3339, exclusive)")
	out := fs.String("out", "", "the bundle's directory")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for a signed checkpoint to cover every selected event")
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	const usage = "casetrail export (--case ID | --from T --to T) --out DIR [--wait D] [--config FILE]"
	if err := noWords(words, usage); err != nil {
		return err
	}
	if *out == "" || (*caseID == "") == (*from == "" || *to == "") {
		return errors.New("usage: " + usage)
	}
	cfg, keys, st, closeStore, err := openSigner(ctx, *cfgPath, getenv, stderr, false)
	if err != nil {
		return err
	}
	defer closeStore()
	var ids []int64
	var sel ledger.Selection
	if *caseID != "" {
		sel.Case = *caseID
		ids, err = caseTimelineIDs(ctx, st, cfg, *caseID)
	} else {
		f, ferr := timeline.ParseTime(*from)
		t, terr := timeline.ParseTime(*to)
		if ferr != nil || terr != nil {
			return errors.New("--from and --to take RFC 3339 times")
		}
		if !f.Before(t) {
			return errors.New("--to must be after --from")
		}
		sel.From, sel.To = f.UTC().Format(time.RFC3339Nano), t.UTC().Format(time.RFC3339Nano)
		ids, err = st.EventsReceived(ctx, f, t)
	}
	if err != nil {
		return err
	}
	// The running servers add events to the log within a second and sign
	// it every few seconds while it grows (a new store's first checkpoint
	// too): wait for that, rather than leave out the newest events.
	deadline := time.Now().Add(*wait)
	for {
		pending, size, err := ledger.Uncovered(ctx, st, ids)
		first := errors.Is(err, ledger.ErrNoCheckpoint)
		if err != nil && !first {
			return err
		}
		if !first && len(pending) == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			if first {
				return fmt.Errorf("%w after waiting %s (is a server running? --wait waits longer)", err, *wait)
			}
			break
		}
		if first {
			fmt.Fprintf(stderr, "waiting for the log's first signed checkpoint\n")
		} else {
			fmt.Fprintf(stderr, "waiting for a signed checkpoint past size %d to cover %d more events\n", size, len(pending))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	// A checkpoint stored while waiting must be one of this key's log too.
	if err := keys.SignedLog(ctx, st, cfg.LogOrigin); err != nil {
		return err
	}
	m, err := ledger.Export(ctx, st, keys, sel, ids, *out)
	for errors.Is(err, ledger.ErrPreviousKeyCheckpoint) && time.Now().Before(deadline) {
		// Just after a rotation: the first server with the new key signs
		// a checkpoint at once.
		fmt.Fprintln(stderr, "waiting for a checkpoint signed with the current key")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		m, err = ledger.Export(ctx, st, keys, sel, ids, *out)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %d events with inclusion proofs to %s, against the checkpoint of size %d\n", len(m.EventIDs), *out, m.CheckpointSize)
	if len(m.Pending) > 0 {
		return fmt.Errorf("the bundle is partial: %d selected events are not yet covered by a signed checkpoint (is a server running?); they are listed in manifest.json", len(m.Pending))
	}
	return nil
}

// caseTimelineIDs lists the events of a case's timeline, as an auditor sees
// it: the case's own events and the contact-center events correlated with
// it.
func caseTimelineIDs(ctx context.Context, st *store.Store, cfg *config.Config, caseID string) ([]int64, error) {
	var ids []int64
	q := url.Values{"limit": {strconv.Itoa(timeline.MaxLimit)}}
	for {
		l, err := timeline.Timeline(ctx, st, timeline.TimelineRequest{CaseID: caseID, Query: q},
			normalize.Options{DefaultCountryCode: cfg.PhoneDefaultCountryCode}, true)
		if err != nil {
			return nil, err
		}
		for _, e := range l.Data {
			id, err := strconv.ParseInt(e.ID, 10, 64)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		if !l.Page.HasMore || l.Page.NextCursor == nil {
			return ids, nil
		}
		q.Set("cursor", *l.Page.NextCursor)
	}
}

const verifyBundleUsage = "casetrail verify-bundle [--key VKEY ... | --config FILE] [--allow-unsigned-manifest] DIR"

// runVerifyBundle checks a bundle offline with only the verifier key.
func runVerifyBundle(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify-bundle", stderr)
	var vkeys keyFlags
	fs.Var(&vkeys, "key", "a verifier key of the log; repeat it for each key of a rotated log, oldest first (default: the keys of --config's server, else the bundle's key.txt, which proves nothing on its own)")
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML) of the server whose key to trust")
	allowUnsigned := fs.Bool("allow-unsigned-manifest", false, "accept a bundle whose manifest is unsigned or missing (one written before manifests were signed), though whether events were taken out of it cannot then be told")
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 {
		return errors.New("usage: " + verifyBundleUsage)
	}
	dir := words[0]
	keys := []string(vkeys)
	origin := "" // the log the bundle must be of, when a configuration names it
	switch {
	case len(keys) > 0:
	case *cfgPath != "":
		cfg, err := config.LoadLog(*cfgPath, getenv)
		if err != nil {
			return err
		}
		lk, err := logKeys(cfg)
		if err != nil {
			return fmt.Errorf("verifier key: %w; pass --key", err)
		}
		keys, origin = append(lk.PreviousKeys, lk.VerifierKey), cfg.LogOrigin
	default:
		raw, err := os.ReadFile(filepath.Join(dir, "key.txt"))
		if err != nil {
			return err
		}
		keys = strings.Fields(string(raw)) // one key a line, oldest first
		fmt.Fprintln(stderr, "warning: using the bundle's own key.txt; pass --key with a copy you trust")
	}
	chain, err := ledger.ParseKeyChain(keys...)
	if err != nil {
		return err
	}
	rep, err := ledger.VerifyBundle(dir, chain)
	if err == nil && origin != "" && rep.Origin != origin {
		err = errors.New(otherLog(rep.Origin, origin))
	}
	// Without a signed manifest, events taken out of the bundle after its
	// export cannot be found, so such a bundle fails unless accepted.
	unsigned := ""
	switch {
	case rep.Manifest == nil:
		unsigned = "the bundle has no manifest.json, so whether events were taken out of it cannot be told"
	case !rep.ManifestSigned:
		unsigned = "manifest.json is not signed (no manifest.sig), so whether events were taken out of the bundle after its export cannot be told"
	}
	if err == nil && unsigned != "" && !*allowUnsigned {
		err = errors.New(unsigned + " (--allow-unsigned-manifest accepts a bundle written before manifests were signed)")
	}
	if err != nil {
		fmt.Fprintln(stdout, "FAILED:", err)
		return errors.New("bundle verification failed")
	}
	if x := rep.Expunged; len(x) > 0 {
		fmt.Fprintf(stdout, "OK: %d events are in the signed log; %s, and %s expunged (%s): their content was erased, and their records of it are signed with the log's key\n",
			rep.Events, plural(rep.Events-len(x), "matches its body", "match their bodies"), plural(len(x), "was", "were"), strings.Join(x, ", "))
	} else {
		fmt.Fprintf(stdout, "OK: %d events match their bodies and are in the signed log\n", rep.Events)
	}
	m := rep.Manifest
	switch {
	case m != nil && len(m.Pending) > 0:
		fmt.Fprintf(stdout, "PARTIAL: %d more selected events were not yet covered by a signed checkpoint when it was exported\n", len(m.Pending))
		return errors.New("the bundle is partial")
	case unsigned != "":
		fmt.Fprintln(stdout, "note:", unsigned)
	default:
		fmt.Fprintf(stdout, "complete: every event of %s that the checkpoint covers, as its manifest lists them\n", describe(m.Selection))
	}
	return nil
}

// openStore connects an operator command to the configured database (or the
// local one of the data directory), as the application's role unless owner;
// only warnings are logged.
func openStore(ctx context.Context, cfg *config.Config, stderr io.Writer, owner bool) (*store.Store, func(), error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	url, stopDB, err := database(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, url, store.Options{Logger: log, Owner: owner})
	if err != nil {
		stopDB()
		return nil, nil, err
	}
	return st, func() { st.Close(); stopDB() }, nil
}

// openSigner loads the configuration and the log's keys, and opens the
// store (as the owner when owner is set). The keys must be those that
// signed the stored checkpoints, for the configured log: keys and export
// would hand auditors a key that verifies none of them, and an expunge
// record signed with another key never verifies. So no key is made here
// either; the server makes it.
func openSigner(ctx context.Context, cfgPath string, getenv func(string) string, stderr io.Writer, owner bool) (*config.Config, *ledger.Keys, *store.Store, func(), error) {
	cfg, err := config.Load(cfgPath, getenv)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	keys, err := logKeys(cfg)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	st, closeStore, err := openStore(ctx, cfg, stderr, owner)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := keys.SignedLog(ctx, st, cfg.LogOrigin); err != nil {
		closeStore()
		return nil, nil, nil, nil, err
	}
	return cfg, keys, st, closeStore, nil
}

func describe(s ledger.Selection) string {
	if s.Case != "" {
		return fmt.Sprintf("case %q (its timeline)", s.Case)
	}
	return fmt.Sprintf("the events received from %s to %s", s.From, s.To)
}
