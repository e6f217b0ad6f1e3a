// Package localpg runs a private PostgreSQL server from the installed
// PostgreSQL binaries: initdb once into a data directory, start it on a unix
// socket and a free loopback port, and stop it again. `casetrail serve` uses it
// when no DATABASE_URL is configured, and the test harness uses it for a
// throw-away server.
package localpg

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries can be found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with `apt-get install -y postgresql` (Debian/Ubuntu), or set DATABASE_URL to an existing server")

// Options configure a local server.
type Options struct {
	// DataDir holds the cluster; it is created and initialised when empty.
	DataDir string
	// Settings are extra `-c name=value` server settings (tests use
	// fsync=off; production and benchmarks must not).
	Settings map[string]string
	// TCP also listens on loopback TCP (for proxies in tests). The cluster
	// trusts every connection, so without it only the unix socket, in a
	// directory only its owner may enter, takes connections: another user
	// of the machine must not get in as the superuser.
	TCP    bool
	Logger *slog.Logger
}

// Server is a running local PostgreSQL.
type Server struct {
	bin     string
	dataDir string
	sockDir string
	port    int
	tcp     bool
	// tmpSock is set when sockDir is under the temporary directory, to be
	// removed when the server stops.
	tmpSock bool
	runAs   *user.User // nil when the current user runs the server
	log     *slog.Logger
	// users is this Server's shared lock on the cluster's users file, held
	// from launch to Stop: every process using the cluster holds one, so
	// the last one out stops it and a process that dies lets go of it.
	users *os.File
}

// superuser is the bootstrap superuser name of clusters made by initdb here.
const superuser = "postgres"

// FindBinDir returns the directory holding pg_ctl and initdb: PATH first, then
// the newest /usr/lib/postgresql/<version>/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(matches, func(i, j int) bool {
		return versionOf(matches[i]) > versionOf(matches[j])
	})
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(pgCtlPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgCtlPath))))
	return v
}

// Start initialises the data directory if needed and starts the server, or
// uses a server already running on it: another process's, which keeps it
// running until both have stopped, or one a killed process left behind.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	return s.oneAtATime(func() (*Server, error) {
		if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
			if err := s.initdb(ctx); err != nil {
				return nil, err
			}
		}
		return s.launch(ctx, opts)
	})
}

// initdb makes the cluster in a directory beside the data directory and
// moves it into place once complete: initdb writes PG_VERSION first, so an
// initdb cut short (Ctrl-C on a first start) would leave a data directory
// that looks initialised and never starts.
func (s *Server) initdb(ctx context.Context) error {
	s.log.Info("initialising local PostgreSQL", "dir", s.dataDir)
	tmp := s.dataDir + ".init"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := s.run(ctx, "initdb", "-D", tmp, "-U", superuser, "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return os.Rename(tmp, s.dataDir)
}

// oneAtATime runs start holding an exclusive lock beside the data
// directory, so that two processes starting at once (a server and
// `casetrail verify`) do not both initialise or start the server: the
// second waits, then finds it running and uses it.
func (s *Server) oneAtATime(start func() (*Server, error)) (*Server, error) {
	path := filepath.Join(filepath.Dir(s.dataDir), "postgres.start.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local PostgreSQL start lock: %w", err)
	}
	defer f.Close() // lets go of the lock
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return start()
}

// StartStandby starts a hot standby of primary: a streaming replica that
// answers read-only queries and replays everything the primary commits. Its
// data directory is copied from the primary (pg_basebackup) when empty.
func StartStandby(ctx context.Context, primary *Server, opts Options) (*Server, error) {
	s, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	return s.oneAtATime(func() (*Server, error) {
		if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
			s.log.Info("copying the primary for a standby", "dir", s.dataDir)
			if err := s.run(ctx, "pg_basebackup", "-D", s.dataDir, "-R", "-X", "stream", "-c", "fast",
				"-h", primary.sockDir, "-p", strconv.Itoa(primary.port), "-U", superuser); err != nil {
				return nil, fmt.Errorf("pg_basebackup: %w", err)
			}
		}
		return s.launch(ctx, opts)
	})
}

// prepare makes the data directory and the socket directory, owned by the
// user that will run the server.
func prepare(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dataDir: filepath.Join(dataDir, "pgdata"), tcp: opts.TCP, log: log}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the unprivileged user 'postgres' to run PostgreSQL: %w", err)
		}
		s.runAs = u
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := s.chown(dataDir); err != nil {
		return nil, err
	}
	if err := s.ensureTraversable(dataDir); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts the server on the prepared data directory, or uses one
// already running on it: another casetrail process's (a server, while
// `casetrail verify` runs beside it), or one a killed process left behind.
func (s *Server) launch(ctx context.Context, opts Options) (*Server, error) {
	if err := s.join(); err != nil {
		return nil, err
	}
	srv, err := s.startOrReuse(ctx, opts)
	if err != nil {
		s.closeUsers()
		return nil, err
	}
	return srv, nil
}

// usersFile is beside the data directory, where the server's log is.
func (s *Server) usersFile() string {
	return filepath.Join(filepath.Dir(s.dataDir), "postgres.users")
}

// join takes a shared lock on the users file. It waits while another
// process holds it exclusively, that is while that process stops the
// server.
func (s *Server) join() error {
	f, err := os.OpenFile(s.usersFile(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("local PostgreSQL users file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("locking %s: %w", s.usersFile(), err)
	}
	s.users = f
	return nil
}

// leave lets go of the shared lock and reports whether this was the last
// user; the last one then holds the lock exclusively until closeUsers.
func (s *Server) leave() bool {
	if s.users == nil {
		return true
	}
	// Converting to exclusive drops the shared lock first, so a refusal
	// leaves nothing held, which is what leaving means anyway.
	return syscall.Flock(int(s.users.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

func (s *Server) closeUsers() {
	if s.users != nil {
		s.users.Close()
		s.users = nil
	}
}

func (s *Server) startOrReuse(ctx context.Context, opts Options) (*Server, error) {
	if pid, port, sock, ok := s.runningPostmaster(); ok {
		s.log.Info("reusing running local PostgreSQL", "pid", pid, "port", port)
		s.port, s.sockDir = port, sock
		s.tmpSock = strings.HasPrefix(filepath.Base(sock), "ctpg") && filepath.Dir(sock) == filepath.Clean(os.TempDir())
		return s, nil
	}

	// The socket's directory is made here, holding the users file's lock:
	// the last process to stop a server removes a temporary one while it
	// holds that lock exclusively.
	var err error
	s.sockDir, err = s.socketDir(filepath.Dir(s.dataDir))
	if err != nil {
		return nil, err
	}
	if err := s.chown(s.sockDir); err != nil {
		return nil, err
	}
	s.port, err = freePort()
	if err != nil {
		return nil, err
	}
	serverOpts := []string{
		"-p", strconv.Itoa(s.port),
		"-k", s.sockDir,
		"-c", "listen_addresses=" + s.listenAddresses(),
	}
	keys := make([]string, 0, len(opts.Settings))
	for k := range opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		serverOpts = append(serverOpts, "-c", k+"="+opts.Settings[k])
	}
	logFile := filepath.Join(filepath.Dir(s.dataDir), "postgres.log")
	if err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "-l", logFile, "-w", "-t", "60",
		"-o", strings.Join(serverOpts, " "), "start"); err != nil {
		return nil, fmt.Errorf("pg_ctl start (log in %s): %w", logFile, err)
	}
	s.log.Info("started local PostgreSQL", "port", s.port, "socket_dir", s.sockDir)
	return s, nil
}

// listenAddresses is the listen_addresses setting, as pg_ctl's shell reads
// it: loopback TCP only when asked for, otherwise none.
func (s *Server) listenAddresses() string {
	if s.tcp {
		return "127.0.0.1"
	}
	return "''"
}

// URL is a connection string for database dbname as the bootstrap superuser,
// over the unix socket.
func (s *Server) URL(dbname string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", superuser, dbname, s.sockDir, s.port)
}

// TCPURL is a connection string over loopback TCP (for proxies in tests;
// the server must have been started with Options.TCP).
func (s *Server) TCPURL(dbname string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, dbname)
}

// Port is the loopback TCP port.
func (s *Server) Port() int { return s.port }

// DataDir is the cluster directory.
func (s *Server) DataDir() string { return s.dataDir }

// Stop shuts the server down (fast mode: open sessions are ended, committed
// data is safe) unless another process still uses it: the last user to stop
// stops the server.
func (s *Server) Stop(ctx context.Context) error {
	defer s.closeUsers()
	if !s.leave() {
		s.log.Info("leaving local PostgreSQL running: another casetrail process uses it", "port", s.port)
		return nil
	}
	return s.stop(ctx, "fast")
}

// Kill stops the server the way a crash would (immediate mode: no
// checkpoint; recovery replays the WAL on the next start), whoever else
// uses it; Restart starts it again.
func (s *Server) Kill(ctx context.Context) error {
	return s.stop(ctx, "immediate")
}

func (s *Server) stop(ctx context.Context, mode string) error {
	if err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w", err)
	}
	s.log.Info("stopped local PostgreSQL", "mode", mode)
	if s.tmpSock && mode != "immediate" {
		if err := os.RemoveAll(s.sockDir); err != nil {
			s.log.Warn("removing the local PostgreSQL socket directory", "dir", s.sockDir, "err", err)
		}
	}
	return nil
}

// Restart starts a stopped server again on the same port and socket.
func (s *Server) Restart(ctx context.Context) error {
	serverOpts := fmt.Sprintf("-p %d -k %s -c listen_addresses=%s", s.port, s.sockDir, s.listenAddresses())
	logFile := filepath.Join(filepath.Dir(s.dataDir), "postgres.log")
	return s.run(ctx, "pg_ctl", "-D", s.dataDir, "-l", logFile, "-w", "-t", "60", "-o", serverOpts, "start")
}

// runningPostmaster reads postmaster.pid of a live server on this data
// directory: its pid, port and socket directory.
func (s *Server) runningPostmaster() (pid, port int, sockDir string, ok bool) {
	f, err := os.Open(filepath.Join(s.dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, "", false
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 5 {
		return 0, 0, "", false
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	sockDir = strings.TrimSpace(lines[4])
	if pid <= 0 || port <= 0 || sockDir == "" {
		return 0, 0, "", false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, 0, "", false
	}
	// A stale file can name a pid reused by another process; the socket
	// proves a postmaster is listening.
	conn, err := net.DialTimeout("unix", filepath.Join(sockDir, fmt.Sprintf(".s.PGSQL.%d", port)), time.Second)
	if err != nil {
		return 0, 0, "", false
	}
	conn.Close()
	return pid, port, sockDir, true
}

func (s *Server) run(ctx context.Context, tool string, args ...string) error {
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if s.runAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs.Username, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// Run from a directory the server user can read: it may not be allowed
	// into the caller's working directory.
	cmd.Dir = "/"
	// pg_ctl start leaves the postmaster running; it must not die with our
	// process group on Ctrl-C before we stop it ourselves.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cancelled, the tool stops with everything it started in its group:
	// killing runuser alone would leave initdb running on.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Server) chown(path string) error {
	if s.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(s.runAs.Uid)
	gid, _ := strconv.Atoi(s.runAs.Gid)
	return os.Chown(path, uid, gid)
}

// ensureTraversable lets the server user reach dir: an ancestor without
// search permission for others (a 0700 home or temp directory) gets it, and
// only it (no read permission, so its listing stays private).
func (s *Server) ensureTraversable(dir string) error {
	if s.runAs == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			s.log.Warn("granting search permission so that PostgreSQL can reach its data directory", "dir", p)
			if err := os.Chmod(p, info.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("PostgreSQL (user %s) cannot reach %s: %w", s.runAs.Username, dir, err)
			}
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

// socketDir picks a directory for the unix socket. Socket paths are limited
// to about 100 bytes, so a deep data directory gets a short one under the
// temporary directory, named after the data directory so that every start
// of one cluster uses the same one, and removed when the server stops.
func (s *Server) socketDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "run")
	if len(dir)+len("/.s.PGSQL.65535.lock") < 100 {
		return dir, os.MkdirAll(dir, 0o700)
	}
	sum := sha256.Sum256([]byte(dataDir))
	dir = filepath.Join(os.TempDir(), fmt.Sprintf("ctpg-%d-%x", os.Geteuid(), sum[:6]))
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		err = s.ownSocketDir(dir)
	}
	if err != nil {
		// Another user's, or not a private directory: not one to put a
		// socket that trusts every connection in.
		s.log.Warn("not using the local PostgreSQL socket directory", "dir", dir, "err", err)
		dir, err = os.MkdirTemp("", "ctpg")
	}
	s.tmpSock = err == nil
	return dir, err
}

// ownSocketDir accepts an existing socket directory only if it is a
// directory (not a link), of this process's user or the server's, that no
// one else may enter.
func (s *Server) ownSocketDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st.Uid != uint32(os.Geteuid()) && (s.runAs == nil || strconv.Itoa(int(st.Uid)) != s.runAs.Uid) {
		return fmt.Errorf("%s belongs to user %d", dir, st.Uid)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s may be entered by others (mode %v)", dir, info.Mode().Perm())
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReplayed waits until the standby at standbyURL has replayed
// everything the primary at primaryURL had written when it was called.
func WaitReplayed(ctx context.Context, primaryURL, standbyURL string) error {
	primary, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		return err
	}
	defer primary.Close(ctx)
	var target string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		return err
	}
	standby, err := pgx.Connect(ctx, standbyURL)
	if err != nil {
		return err
	}
	defer standby.Close(ctx)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		var done bool
		err := standby.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", target).Scan(&done)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the standby has not replayed %s: %w", target, ctx.Err())
		case <-t.C:
		}
	}
}
