package dbtest

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy in front of the test server, so that a test can cut
// the database away from the application and put it back.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	// commitCuts is how many more connections to cut right after a COMMIT
	// passes to the server, before its answer can come back.
	commitCuts atomic.Int64
}

// CutAfterNextCommit arms the proxy to cut the connection that next sends a
// commit, right after forwarding it: the client cannot know whether it
// committed. A commit is a COMMIT, or the Sync that ends a statement sent
// outside a transaction block (its implicit transaction commits there, as
// every ingest statement does).
func (p *Proxy) CutAfterNextCommit() { p.commitCuts.Add(1) }

// NewProxy proxies to the database of dbURL (a URL from New) and returns
// the proxy and a URL of the same database through it.
func NewProxy(t testing.TB, dbURL string) (*Proxy, string) {
	t.Helper()
	tcp := TCPURL(dbURL)
	u, err := url.Parse(tcp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ListenProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u.Host = p.Addr()
	return p, u.String()
}

// ListenProxy proxies a loopback port to target (host:port).
func ListenProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.SetDown(true)
}

// Cut closes every open connection; new ones go through.
func (p *Proxy) Cut() {
	p.SetDown(true)
	p.SetDown(false)
}

// SetDown cuts every open connection and refuses new ones (down), or lets
// connections through again.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

func (p *Proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(client)
	}
}

func (p *Proxy) pipe(client net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		client.Close()
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.forward(server, client); done <- struct{}{} }()
	go func() { io.Copy(client, server); done <- struct{}{} }() //nolint:errcheck
	<-done
	client.Close()
	server.Close()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// forward copies client bytes to the server, cutting both sides right after
// a commit when armed. pgx commits with a simple query, "commit" and a NUL,
// and ends an extended-protocol statement with a Sync message.
func (p *Proxy) forward(server, client net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			commits := bytes.Contains(bytes.ToLower(buf[:n]), []byte("commit\x00")) || bytes.HasSuffix(buf[:n], syncMessage)
			if p.commitCuts.Load() > 0 && commits && p.commitCuts.Add(-1) >= 0 {
				client.Close()
				server.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// syncMessage is the protocol's Sync: 'S' and its length, 4.
var syncMessage = []byte{'S', 0, 0, 0, 4}
