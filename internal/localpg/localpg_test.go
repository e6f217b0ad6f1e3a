package localpg_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/localpg"
)

func query(t *testing.T, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var s string
	require.NoError(t, conn.QueryRow(context.Background(), sql).Scan(&s))
	return s
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql)
	require.NoError(t, err)
}

func TestStartStopReuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	opts := localpg.Options{DataDir: dir, Settings: map[string]string{"fsync": "off"}, TCP: true}

	srv, err := localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(srv.DataDir(), "PG_VERSION"))
	require.Equal(t, "off", query(t, srv.URL("postgres"), "SHOW fsync"))
	exec(t, srv.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
	// Loopback TCP works as well as the socket.
	require.Equal(t, "still here", query(t, srv.TCPURL("postgres"), "SELECT v FROM kept"))
	require.NoError(t, srv.Stop(ctx))
	_, err = pgx.Connect(ctx, srv.URL("postgres"))
	require.Error(t, err, "stopped server refuses connections")

	// A second start reuses the initialised directory and its data.
	srv2, err := localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, "still here", query(t, srv2.URL("postgres"), "SELECT v FROM kept"))

	// A start while another user's server runs uses it, and its Stop
	// leaves it running for that user.
	srv3, err := localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, srv2.Port(), srv3.Port())
	require.Equal(t, "still here", query(t, srv3.URL("postgres"), "SELECT v FROM kept"))
	require.NoError(t, srv3.Stop(ctx))
	require.Equal(t, "still here", query(t, srv2.URL("postgres"), "SELECT v FROM kept"),
		"the first user's server still answers")

	// Nor does the first user's Stop, while another one uses it.
	srv4, err := localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.NoError(t, srv2.Stop(ctx))
	require.Equal(t, "still here", query(t, srv4.URL("postgres"), "SELECT v FROM kept"),
		"the later user's server still answers")

	// A start while the server runs but its last user was killed takes it
	// over, and is the last user to stop it.
	srv4.Abandon()
	srv5, err := localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, srv2.Port(), srv5.Port())
	require.NoError(t, srv5.Stop(ctx))
	_, err = os.Stat(filepath.Join(srv.DataDir(), "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "no server left behind")
}

// Two processes starting the local server at once on a fresh directory
// (a server and `casetrail verify` run together) both get it: one
// initialises and starts it, the other uses it.
func TestConcurrentStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := localpg.Options{DataDir: t.TempDir(), Settings: map[string]string{"fsync": "off"}}
	servers := make([]*localpg.Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = localpg.Start(ctx, opts) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, servers[0].Port(), servers[1].Port(), "one server, shared")
	require.NoError(t, servers[0].Stop(ctx))
	require.Equal(t, "1", query(t, servers[1].URL("postgres"), "SELECT 1::text"), "still running for the other")
	require.NoError(t, servers[1].Stop(ctx))
}

// The cluster trusts every connection, so the server of `make run` takes
// none over TCP, where any user of the machine could log in as its
// superuser; only its owner can reach the unix socket.
func TestNoTCPUnlessAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := localpg.Start(ctx, localpg.Options{DataDir: t.TempDir(), Settings: map[string]string{"fsync": "off"}})
	require.NoError(t, err)
	defer srv.Stop(ctx) //nolint:errcheck
	require.Equal(t, "1", query(t, srv.URL("postgres"), "SELECT 1::text"))
	_, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port()), time.Second)
	require.Error(t, err, "the server listens on loopback TCP")
	info, err := os.Stat(filepath.Join(filepath.Dir(srv.DataDir()), "run"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "the socket's directory is its owner's")
}

// A data directory too deep for a socket path gets its socket directory
// under the temporary directory: the same one on every start, private, and
// removed when the server stops, so that starts do not leave one behind
// each. One that someone else made there is not used.
func TestDeepDataDirSocket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := localpg.Options{DataDir: filepath.Join(t.TempDir(), strings.Repeat("deep/", 20)), Settings: map[string]string{"fsync": "off"}}

	srv, err := localpg.Start(ctx, opts)
	require.NoError(t, err)
	sock := srv.SocketDir()
	require.Equal(t, filepath.Clean(os.TempDir()), filepath.Dir(sock))
	info, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	require.Equal(t, "1", query(t, srv.URL("postgres"), "SELECT 1::text"))
	require.NoError(t, srv.Stop(ctx))
	require.NoDirExists(t, sock)

	srv, err = localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, sock, srv.SocketDir(), "the same directory on the next start")
	require.NoError(t, srv.Stop(ctx))
	require.NoDirExists(t, sock)

	require.NoError(t, os.Mkdir(sock, 0o755))
	t.Cleanup(func() { os.Remove(sock) })
	srv, err = localpg.Start(ctx, opts)
	require.NoError(t, err)
	require.NotEqual(t, sock, srv.SocketDir(), "a directory others may enter is not used")
	require.Equal(t, "1", query(t, srv.URL("postgres"), "SELECT 1::text"))
	require.NoError(t, srv.Stop(ctx))
	require.NoDirExists(t, srv.SocketDir())
}

// A first start cut short while initdb runs (Ctrl-C on a first make run)
// leaves nothing that the next start takes for a cluster: it initialises
// one and starts it.
func TestInitdbCutShortIsRedone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := localpg.Options{DataDir: dir, Settings: map[string]string{"fsync": "off"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// initdb writes PG_VERSION first, well before it is done.
		for ctx.Err() == nil {
			if m, _ := filepath.Glob(filepath.Join(dir, "*", "PG_VERSION")); len(m) > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := localpg.Start(ctx, opts)
	require.Error(t, err, "initdb was not cut short")
	require.NoFileExists(t, filepath.Join(dir, "pgdata", "PG_VERSION"), "a half-made cluster is left in place")

	srv, err := localpg.Start(context.Background(), opts)
	require.NoError(t, err)
	defer srv.Stop(context.Background()) //nolint:errcheck
	require.Equal(t, "1", query(t, srv.URL("postgres"), "SELECT 1::text"))
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()
	dir, err := localpg.FindBinDir()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir, "initdb"))
	require.FileExists(t, filepath.Join(dir, "pg_ctl"))
}

func TestStandbyReplaysThePrimary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, standby := dbtest.StandbyPair(t, func(primary *localpg.Server) {
		exec(t, primary.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the copy')")
	})
	require.NotEqual(t, primary.Port(), standby.Port())
	require.Equal(t, "true", query(t, standby.URL("postgres"), "SELECT pg_is_in_recovery()::text"))
	require.Equal(t, "before the copy", query(t, standby.URL("postgres"), "SELECT v FROM kept"))

	// What the primary commits later reaches the standby.
	exec(t, primary.URL("postgres"), "INSERT INTO kept VALUES ('after the copy')")
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, localpg.WaitReplayed(waitCtx, primary.URL("postgres"), standby.URL("postgres")))
	require.Equal(t, "2", query(t, standby.URL("postgres"), "SELECT count(*)::text FROM kept"))

	// And it takes no writes of its own.
	conn, err := pgx.Connect(ctx, standby.URL("postgres"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "INSERT INTO kept VALUES ('on the standby')")
	require.ErrorContains(t, err, "read-only")
}
