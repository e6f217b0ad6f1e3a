package store_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/store"
)

// Over TCP, the pool's sessions and the pipe's connection probe a silent
// peer after 15 s and give it up once 30 s of data or probes go
// unacknowledged, instead of the kernel's defaults (2 hours before the first
// probe; about 15 minutes of retransmissions), so that a batch never waits
// on a lost connection for longer than that.
func TestConnectionsGiveUpOnASilentPeer(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	s, err := store.Open(context.Background(), dbtest.TCPURL(d.URL), store.Options{Logger: dbtest.Logger(t)})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	p := s.NewPipe(0)
	defer p.Close()
	c := ingestPiped(p, event(`{"n":1}`, "k1", true))
	waitFor(t, c.done, "the batch to be answered")
	require.NoError(t, c.err)

	for name, conn := range map[string]net.Conn{"pool": store.PoolConn(t, s), "pipe": store.PipeConn(p)} {
		tc, ok := conn.(*net.TCPConn)
		require.True(t, ok, "%s: %T is not a TCP connection", name, conn)
		raw, err := tc.SyscallConn()
		require.NoError(t, err)
		opt := func(level, name int) int {
			var v int
			var gerr error
			require.NoError(t, raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, name) }))
			require.NoError(t, gerr)
			return v
		}
		require.Equal(t, 1, opt(unix.SOL_SOCKET, unix.SO_KEEPALIVE), name)
		require.Equal(t, int((15 * time.Second).Seconds()), opt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE), name)
		require.Equal(t, int((30 * time.Second).Milliseconds()), opt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT), name)
	}
}
