package store

import (
	"net"
	"time"
)

// The database connections give up on a server or network gone silent
// within about half a minute, where the kernel's defaults wait a quarter of
// an hour or more: a batch waiting on such a connection then fails
// unavailable (its senders retry) and the next batch makes a new one,
// instead of every sender waiting behind it. Keep-alive probes find the
// silence while a statement runs or the connection idles; the user timeout
// (Linux) ends the connection once written data or a probe has gone
// unacknowledged that long. Neither limits how long a statement may run:
// the server's kernel answers the probes meanwhile.
const (
	keepAliveIdle  = 15 * time.Second
	tcpUserTimeout = 30 * time.Second
)

// dialer makes the database connections (the pool's and the pipe's). Unix
// sockets take none of these settings.
func dialer() *net.Dialer {
	return &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: keepAliveIdle, Interval: 5 * time.Second, Count: 4},
		Control:         setUserTimeout,
	}
}
