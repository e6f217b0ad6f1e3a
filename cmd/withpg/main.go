// Command withpg runs a command against a throw-away PostgreSQL server: it
// starts one in a temporary directory (test settings: fsync off), exports its
// superuser URL as CASETRAIL_TEST_PG, runs the command, then stops the server
// and removes the directory whatever the command's outcome.
//
//	go run ./cmd/withpg -- go test ./...
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/casetrail/casetrail/internal/dbtest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg -- command [args...]")
		return 2
	}
	ctx := context.Background()
	srv, dir, err := dbtest.StartServer(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "withpg:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer func() {
		if err := srv.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "withpg:", err)
		}
	}()

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), dbtest.EnvAdminURL+"="+srv.URL("postgres"))
	// Ctrl-C reaches the child through the terminal; we only wait for it so
	// that the server is stopped afterwards.
	signal.Ignore(syscall.SIGINT)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return max(exit.ExitCode(), 1)
		}
		fmt.Fprintln(os.Stderr, "withpg:", err)
		return 1
	}
	return 0
}
