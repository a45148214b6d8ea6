// Command conformanceserver is the upstream MCP server scripts/conformance.sh
// runs the official conformance suite against (@modelcontextprotocol/conformance,
// --requirements 2026-07-28), directly and behind sigil-hub.
//
// It is built on mcp-go (the version go.mod requires) and serves both protocol
// eras on one endpoint, as mcp-go's server does: a request whose _meta names
// 2026-07-28 is served statelessly, an initialize starts a 2025-era session.
// Its tools, resources and prompts are those of mcp-go's own conformance
// server (github.com/mark3labs/mcp-go/examples/conformance), plus every
// diagnostic tool the 2026-07-28 scenarios call: the capability, logging,
// streaming and list-change hooks of server-stateless, and the multi
// round-trip (input_required) tools and prompt of input-required-result-*.
// testdata/conformance/README.md lists them and what each scenario expects.
//
// Usage:
//
//	conformanceserver [-addr 127.0.0.1:0]   Streamable HTTP at /mcp, /health answers 200
//	conformanceserver -stdio                 one JSON-RPC message per line on stdin/stdout
//	conformanceserver -strip test_ ...       tools and prompts named test_X are served as X
//
// -addr defaults to $CONFORMANCE_ADDR, else 127.0.0.1:3000. Once listening it
// writes "conformanceserver: serving MCP at http://HOST:PORT/mcp" to stderr,
// so port 0 can be used. Logs go to stderr only.
//
// -strip test_ is for running the suite through sigil-hub in hub mode, where
// the hub exposes an upstream's tool X of [servers.NAME] as NAME<separator>X:
// with the server named "test" and separator "_", the hub exposes this
// server's "simple_text" as "test_simple_text", the name the suite calls, so
// every scenario applies through the hub's namespacing and routing.
//
// It imports mcp-go's server side and the standard library, no sigil-hub
// package: it is an upstream like any other.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("conformanceserver: ")
	defaultAddr := os.Getenv("CONFORMANCE_ADDR")
	if defaultAddr == "" {
		defaultAddr = "127.0.0.1:3000"
	}
	addr := flag.String("addr", defaultAddr, "host:port to serve Streamable HTTP on (port 0 picks a free one)")
	stdio := flag.Bool("stdio", false, "serve on stdin/stdout instead of HTTP")
	strip := flag.String("strip", "", "serve every tool and prompt whose name starts with this prefix without it (see the package comment)")
	modernOnly := flag.Bool("modern-only", false, "speak only MCP 2026-07-28 (server/discover lists no older version), so that a client that probes speaks it")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments %q: use -addr HOST:PORT or -stdio", flag.Args())
	}

	f := newFixture(*strip)
	f.modernOnly = *modernOnly
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *stdio {
		err = f.serveStdio(ctx, os.Stdin, os.Stdout)
	} else {
		err = f.serveHTTP(ctx, *addr)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// serveHTTP serves Streamable HTTP at /mcp (behind the edge checks of edge.go)
// and a plain 200 at /health until ctx ends.
func (f *fixture) serveHTTP(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (pass a free -addr, e.g. 127.0.0.1:0)", addr, err)
	}
	mux := http.NewServeMux()
	var opts []server.StreamableHTTPOption
	if f.modernOnly {
		opts = append(opts, server.WithStreamableHTTPProtocolVersions(mcp.ProtocolVersion20260728))
	}
	mux.Handle("/mcp", f.edgeHTTP(server.NewStreamableHTTPServer(f.mcp, opts...)))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("serving MCP at http://%s/mcp", ln.Addr())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveStdio serves one JSON-RPC message per line until stdin ends or ctx
// ends. Lines the edge answers itself never reach mcp-go; every other line is
// handed to mcp-go's stdio server through a pipe, and both write whole lines
// to stdout through one lock.
func (f *fixture) serveStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	w := &lockedWriter{w: out}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(f.edgeLines(in, pw, w)) }()
	ss := server.NewStdioServer(f.mcp)
	ss.SetErrorLogger(log.New(os.Stderr, "conformanceserver: ", 0))
	if f.modernOnly {
		ss.SetContextFunc(func(ctx context.Context) context.Context {
			return server.WithSupportedProtocolVersions(ctx, []string{mcp.ProtocolVersion20260728})
		})
	}
	err := ss.Listen(ctx, pr, w)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
