package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// The edge answers two kinds of 2026-07-28 request itself, before mcp-go sees
// them, because mcp-go reports every error a tool handler returns as -32603
// and these need their own code (and, on HTTP, status 400):
//
//   - a requestState this server did not issue, or one that was altered or
//     has expired → -32602 Invalid params (input-required-result-tampered-state);
//   - a tool that needs a client capability the request did not declare →
//     -32021 MissingRequiredClientCapability, data
//     {"requiredCapabilities": {"<capability>": {}}} (server-stateless).
//
// Everything else, including every request that is malformed in some other
// way (headers, _meta, version), goes to mcp-go unchanged, which answers it.

// requiredCapability names the client capability a tool cannot work without.
var requiredCapability = map[string]string{
	"test_missing_capability":    "sampling",
	"test_streaming_elicitation": "elicitation",
}

// maxBody bounds the request body the edge reads (mcp-go reads it again).
const maxBody = 8 << 20

// edgeMessage is the part of a JSON-RPC request the edge looks at.
type edgeMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type edgeParams struct {
	Name         string    `json:"name"`
	RequestState string    `json:"requestState"`
	Meta         *mcp.Meta `json:"_meta"`
}

// check returns the error response the edge sends for msg, or nil to let
// mcp-go serve it. headerOK reports whether the transport's own checks (HTTP
// headers) passed; the edge never answers a request mcp-go would reject.
func (f *fixture) check(body []byte, headerOK func(pv string, m edgeMessage) bool) []byte {
	var m edgeMessage
	if json.Unmarshal(body, &m) != nil || len(m.ID) == 0 || bytes.Equal(m.ID, []byte("null")) {
		return nil
	}
	switch mcp.MCPMethod(m.Method) {
	case mcp.MethodToolsCall, mcp.MethodPromptsGet, mcp.MethodResourcesRead:
	default:
		return nil
	}
	var p edgeParams
	if json.Unmarshal(m.Params, &p) != nil {
		return nil
	}
	pv := p.Meta.ProtocolVersion()
	caps := p.Meta.ClientCapabilities()
	if !mcp.IsModernProtocol(pv) || !mcp.IsValidProtocolVersion(pv) || caps == nil || !headerOK(pv, m) {
		return nil
	}
	if p.RequestState != "" {
		if _, err := f.states.open(p.RequestState); err != nil {
			return errorResponse(m.ID, mcp.INVALID_PARAMS, err.Error(), nil)
		}
	}
	if mcp.MCPMethod(m.Method) == mcp.MethodToolsCall {
		if need, ok := requiredCapability[f.strip+p.Name]; ok && !declares(caps, need) {
			return errorResponse(m.ID, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY,
				"tool "+p.Name+" needs the client capability "+need+": declare it in _meta io.modelcontextprotocol/clientCapabilities",
				map[string]any{"requiredCapabilities": map[string]any{need: map[string]any{}}})
		}
	}
	return nil
}

func declares(caps *mcp.ClientCapabilities, name string) bool {
	switch name {
	case "sampling":
		return caps.Sampling != nil
	case "elicitation":
		return caps.Elicitation != nil
	case "roots":
		return caps.Roots != nil
	}
	return false
}

func errorResponse(id json.RawMessage, code int, message string, data any) []byte {
	e := map[string]any{"code": code, "message": message}
	if data != nil {
		e["data"] = data
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
	return b
}

// edgeHTTP puts the edge in front of mcp-go's Streamable HTTP handler. It
// answers only a POST whose MCP-Protocol-Version, Mcp-Method and Mcp-Name
// headers agree with its body and whose Origin (if any) is loopback, as
// mcp-go would accept it; the answer is a JSON-RPC error with status 400.
func (f *fixture) edgeHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !loopbackOrigin(r.Header.Get("Origin")) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		reply := f.check(body, func(pv string, m edgeMessage) bool {
			return r.Header.Get(mcp.HeaderProtocolVersion) == pv &&
				mcp.ValidateStandardHeaders(r.Header.Get, pv, mcp.MCPMethod(m.Method), m.Params) == nil
		})
		if reply == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(reply)
	})
}

// loopbackOrigin reports whether an Origin header is absent or names a
// loopback host; any other origin is left to mcp-go's DNS-rebinding check.
func loopbackOrigin(origin string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// edgeLines reads stdin line by line: a line the edge answers is answered on
// out, every other line is copied to mcp-go's stdio server through to.
func (f *fixture) edgeLines(in io.Reader, to io.Writer, out io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if reply := f.check(bytes.TrimSpace(line), func(string, edgeMessage) bool { return true }); reply != nil {
				if _, werr := out.Write(append(reply, '\n')); werr != nil {
					return werr
				}
			} else if _, werr := to.Write(line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lockedWriter serialises whole writes to w, so a line the edge writes never
// interleaves with one mcp-go writes (mcp-go writes each message in one Write).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
