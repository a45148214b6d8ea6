package front

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConns is the connection bound LimitListener applies when given
// n ≤ 0. An MCP client over Streamable HTTP holds one connection per request
// in flight plus at most one GET stream, so 1024 connections serve a few
// hundred busy sessions (the session cap is 1000: most of them idle).
const DefaultMaxConns = 1024

// refusal bounds: how long one refused connection is given to send its
// request header (and half that again to take its 503), and how many
// refusals may be in progress at once (beyond that a refused connection is
// closed without an answer).
const (
	refuseTimeout = time.Second
	maxRefusing   = 64
	refuseBody    = "too many connections to sigil-hub: retry in a moment\n"
)

// LimitListener returns a listener that keeps at most n of the connections it
// accepted open at once (n ≤ 0 means DefaultMaxConns): the bound on
// concurrent connections of the Streamable HTTP front (docs/faults.md case
// 68). A connection beyond the bound is answered "503 Service Unavailable"
// with "Retry-After: 1" as soon as its request header arrived (within a
// second), and closed; it never reaches the server.
//
// Why refuse instead of letting excess connections wait in Accept (as
// x/net/netutil.LimitListener does): a connection left in the kernel's
// backlog gets no answer at all. It waits for a slot that a keep-alive
// connection or an SSE stream may hold for hours; the client's own timeout
// fires without a reason; and once the backlog is full, new connections are
// dropped silently. An immediate 503 costs one small write, tells the
// client to retry (what the catalogue asks: "connection/concurrency limit
// returns 429/503"), and keeps the hub's sockets and goroutines bounded by
// n plus at most 64 refusals in progress, each over within 1.5 s (more at
// once are closed unanswered).
//
// Accept returns only connections within the bound, and the underlying
// listener's errors unchanged. Close closes the underlying listener and
// waits for the refusals in progress; connections already handed out are
// the server's to close. Safe for concurrent use.
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		n = DefaultMaxConns
	}
	return &limitListener{Listener: ln, max: int64(n)}
}

type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64 // connections handed out and not yet closed
	refusing atomic.Int64 // refusals in progress

	mu     sync.Mutex     // orders refusals started against Close
	closed bool           // guarded by mu
	wg     sync.WaitGroup // refusal goroutines; Add under mu while !closed
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

// refuse answers c with a 503 and closes it, on a goroutine joined by Close
// so that Accept never waits for a slow client.
//
// The answer waits for the request's header: a client that gets a response
// before it sent its request may take it for garbage on an idle connection
// (Go's http.Transport does) and fail without seeing the 503. A connection
// that sends no complete header within refuseTimeout gets the 503 on
// whatever it sent, or no answer if it sent nothing.
func (l *limitListener) refuse(c net.Conn) {
	l.mu.Lock()
	if l.closed || l.refusing.Add(1) > maxRefusing {
		if !l.closed {
			l.refusing.Add(-1)
		}
		l.mu.Unlock()
		_ = c.Close()
		return
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		defer l.refusing.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseTimeout))
		var head [4096]byte
		n := 0
		for n < len(head) && !bytes.Contains(head[:n], []byte("\r\n\r\n")) {
			m, err := c.Read(head[n:])
			n += m
			if err != nil {
				break
			}
		}
		if n == 0 {
			return
		}
		_ = c.SetDeadline(time.Now().Add(refuseTimeout / 2)) // the answer and the drain
		resp := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n" +
			"Connection: close\r\nContent-Length: " + strconv.Itoa(len(refuseBody)) + "\r\n\r\n" + refuseBody
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
		// Closing with the client's request body unread would reset the
		// connection, and a reset can destroy the 503 before the client
		// reads it: half-close, then drain what the client still sends
		// until it closes too or the deadline passes.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.CopyN(io.Discard, c, 64<<10)
	}()
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// limitConn gives its slot back when closed (once, however often Close is
// called).
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite half-closes a TCP connection (net/http uses it, when present,
// to flush an error response before closing); elsewhere it does nothing.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
