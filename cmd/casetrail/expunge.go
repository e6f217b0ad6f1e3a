package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/casetrail/casetrail/internal/ledger"
)

const expungeUsage = "casetrail expunge (--event ID | --rejected ID) [...] --reason TEXT [--config FILE]"

// runExpunge erases the content of events (retention, right to erasure)
// while their leaves, the log's proofs and verify stay as they were, and the
// bodies of kept rejected requests. It connects as the database's owner:
// the server's role may not erase.
func runExpunge(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("expunge", stderr)
	cfgPath := fs.String("config", getenv("CASETRAIL_CONFIG"), "configuration file (YAML)")
	reason := fs.String("reason", "", "why the content is erased (kept with the record of the expunge)")
	var ids, rejected []int64
	idList := func(to *[]int64, what string) func(string) error {
		return func(v string) error {
			for _, f := range strings.Split(v, ",") {
				id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
				if err != nil || id <= 0 {
					return fmt.Errorf("%q is not %s id", f, what)
				}
				*to = append(*to, id)
			}
			return nil
		}
	}
	fs.Func("event", "an event to expunge (repeat it, or give ids separated by commas)", idList(&ids, "an event"))
	fs.Func("rejected", "a kept rejected request whose body to erase (repeat it, or give ids separated by commas)", idList(&rejected, "a rejected request"))
	words, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noWords(words, expungeUsage); err != nil {
		return err
	}
	if len(ids)+len(rejected) == 0 || strings.TrimSpace(*reason) == "" {
		return errors.New("usage: " + expungeUsage)
	}
	_, keys, st, closeStore, err := openSigner(ctx, *cfgPath, getenv, stderr, true)
	if err != nil {
		return err
	}
	defer closeStore()
	if len(rejected) > 0 {
		done, err := st.ExpungeRejected(ctx, rejected, strings.TrimSpace(*reason))
		if err != nil {
			return err
		}
		for _, r := range done {
			switch {
			case r.Already:
				fmt.Fprintf(stdout, "rejected request %d: expunged already; left as it was\n", r.ID)
			case r.With != 0:
				fmt.Fprintf(stdout, "expunged rejected request %d: it sent the same body as %d; its body, detail and event type are erased\n", r.ID, r.With)
			default:
				fmt.Fprintf(stdout, "expunged rejected request %d: its body, detail and event type are erased\n", r.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	results, err := ledger.Expunge(ctx, st, keys, ids, strings.TrimSpace(*reason))
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Already {
			fmt.Fprintf(stdout, "event %d: expunged already; left as it was\n", r.EventID)
			continue
		}
		fmt.Fprintf(stdout, "expunged event %d: its body, document, summary, actor, changes and reply, and %s no other event refers to, are erased; its leaf still verifies\n",
			r.EventID, plural(r.Blobs, "attachment", "attachments"))
	}
	return nil
}

// plural is n with the noun that agrees with it ("1 attachment", "0
// attachments").
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
