// Command casetrail is the audit store's server and its operator tools.
//
//	casetrail serve [--config FILE]
//	casetrail migrate up|down|status [--config FILE]
//	casetrail keys [--all | --new] [--config FILE]
//	casetrail verify [--checkpoint FILE] [--key VKEY ...] [--config FILE]
//	casetrail export (--case ID | --from T --to T) --out DIR [--wait D] [--config FILE]
//	casetrail verify-bundle [--key VKEY ... | --config FILE] [--allow-unsigned-manifest] DIR
//	casetrail expunge (--event ID | --rejected ID) [...] --reason TEXT [--config FILE]
//	casetrail version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal drains; a second ends the process at once, so
		// that a drain that hangs can be cut short. Nothing acknowledged is
		// lost: nothing is acknowledged before its commit.
		<-ctx.Done()
		stop()
		signal.Reset(os.Interrupt, syscall.SIGTERM)
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // -h printed the command's usage, as asked
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "casetrail:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  casetrail serve [--config FILE]              run the server (migrates first)
  casetrail migrate up|down|status [--config FILE]
  casetrail keys [--all | --new] [--config FILE]
                                               print the log's checkpoint verifier key (--all: every
                                               key since the first, oldest first; --new: a new
                                               signing key for a rotation)
  casetrail verify [--checkpoint FILE] [--key VKEY ...] [--config FILE]
                                               recheck the whole store against a signed checkpoint
  casetrail export (--case ID | --from T --to T) --out DIR [--wait D] [--config FILE]
                                               write an audit bundle with inclusion proofs
  casetrail verify-bundle [--key VKEY ... | --config FILE] [--allow-unsigned-manifest] DIR
                                               check a bundle offline with only the public key
  casetrail expunge (--event ID | --rejected ID) [...] --reason TEXT [--config FILE]
                                               erase events' content (their leaves still verify),
                                               or the bodies of kept rejected requests
  casetrail version

Configuration: --config FILE or CASETRAIL_CONFIG; DATABASE_URL and
CASETRAIL_LISTEN override single settings. Without DATABASE_URL the server
runs its own PostgreSQL under ./.casetrail/.`

// newFlagSet is a subcommand's flags; its -h prints the command's line of
// the usage above, then the flags.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n", synopsis(name))
		fs.PrintDefaults()
	}
	return fs
}

// synopsis is the command's line of the usage, without its description.
func synopsis(name string) string {
	for _, line := range strings.Split(usage, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "casetrail "+name+" ") {
			text, _, _ := strings.Cut(line, "   ")
			return text
		}
	}
	return "casetrail " + name
}

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return runExport(ctx, args[1:], getenv, stdout, stderr)
	case "verify-bundle":
		return runVerifyBundle(args[1:], getenv, stdout, stderr)
	case "expunge":
		return runExpunge(ctx, args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "casetrail", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
