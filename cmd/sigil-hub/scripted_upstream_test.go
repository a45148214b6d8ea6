package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The scripted upstream is a small hand-written stdio MCP server for the
// start-up and routing tests: unlike the mcp-go fake (internal/testupstream)
// it can start slowly, advertise logging and completions, send
// notifications/resources/updated for any URI it is subscribed to, and ask
// the client roots/list outside any call. It is this test binary re-executed
// with scriptedMarker set (init below runs before TestMain).
const (
	scriptedMarker = "SIGIL_HUB_TEST_SCRIPTED"
	// scriptedLog is a file that gets every line the upstream received,
	// and {"scripted":"<event>"} lines for what it did.
	scriptedLog = "SCRIPTED_LOG"
	// scriptedDelay is how long (ms) the upstream sleeps before it reads
	// anything: a slow start (an npx download).
	scriptedDelay = "SCRIPTED_DELAY_MS"
	// scriptedRoots lists when the upstream asks roots/list: "init" (right
	// after notifications/initialized) and "list_changed" (after
	// notifications/roots/list_changed), comma-separated.
	scriptedRoots = "SCRIPTED_ROOTS"
	// scriptedInstructions is the initialize result's instructions.
	scriptedInstructions = "SCRIPTED_INSTRUCTIONS"
)

func init() {
	if os.Getenv(scriptedMarker) == "1" {
		os.Exit(scriptedMain())
	}
}

// scriptedServer is one scripted upstream process's state.
type scriptedServer struct {
	outMu sync.Mutex
	out   *bufio.Writer
	logMu sync.Mutex
	log   *os.File
	seq   int
	roots map[string]bool
}

func scriptedMain() int {
	if ms, _ := strconv.Atoi(os.Getenv(scriptedDelay)); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	s := &scriptedServer{out: bufio.NewWriter(os.Stdout), roots: map[string]bool{}}
	for _, w := range strings.Split(os.Getenv(scriptedRoots), ",") {
		s.roots[strings.TrimSpace(w)] = true
	}
	if p := os.Getenv(scriptedLog); p != "" {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scripted upstream:", err)
			return 1
		}
		s.log = f
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		s.logLine(line)
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(line, &m) != nil || m.Method == "" {
			continue // a response to one of our requests: logged above
		}
		if m.ID == nil {
			s.notification(m.Method)
			continue
		}
		s.request(m.ID, m.Method, m.Params)
	}
	return 0
}

func (s *scriptedServer) logLine(b []byte) {
	if s.log == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	_, _ = s.log.Write(append(append([]byte(nil), b...), '\n'))
}

func (s *scriptedServer) event(kind string) {
	s.logLine([]byte(`{"scripted":` + strconv.Quote(kind) + `}`))
}

func (s *scriptedServer) write(v any) {
	b, _ := json.Marshal(v)
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = s.out.Write(append(b, '\n'))
	_ = s.out.Flush()
}

func (s *scriptedServer) askRoots() {
	s.outMu.Lock()
	s.seq++
	id := fmt.Sprintf("scripted-roots-%d", s.seq)
	s.outMu.Unlock()
	s.write(map[string]any{"jsonrpc": "2.0", "id": id, "method": "roots/list"})
	s.event("asked roots/list")
}

func (s *scriptedServer) notification(method string) {
	switch method {
	case "notifications/initialized":
		if s.roots["init"] {
			s.askRoots()
		}
	case "notifications/roots/list_changed":
		if s.roots["list_changed"] {
			s.askRoots()
		}
	}
}

func (s *scriptedServer) request(id json.RawMessage, method string, params json.RawMessage) {
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
		URI             string `json:"uri"`
		Name            string `json:"name"`
	}
	_ = json.Unmarshal(params, &p)
	var result any
	switch method {
	case "initialize":
		ins := os.Getenv(scriptedInstructions)
		if ins == "" {
			ins = "scripted instructions"
		}
		result = map[string]any{
			"protocolVersion": p.ProtocolVersion,
			"capabilities": map[string]any{
				"tools": map[string]any{"listChanged": true}, "prompts": map[string]any{},
				"resources": map[string]any{"subscribe": true}, "logging": map[string]any{}, "completions": map[string]any{},
			},
			"serverInfo":   map[string]any{"name": "scripted", "version": "1"},
			"instructions": ins,
		}
	case "ping", "logging/setLevel", "resources/unsubscribe":
		result = map[string]any{}
	case "tools/list":
		result = map[string]any{"tools": []any{map[string]any{"name": "hello", "inputSchema": map[string]any{"type": "object"}}}}
	case "prompts/list":
		result = map[string]any{"prompts": []any{map[string]any{"name": "greet"}}}
	case "resources/list":
		result = map[string]any{"resources": []any{map[string]any{"uri": "test://listed", "name": "listed"}}}
	case "resources/templates/list":
		result = map[string]any{"resourceTemplates": []any{}}
	case "resources/read":
		result = map[string]any{"contents": []any{map[string]any{"uri": p.URI, "text": "content of " + p.URI}}}
	case "prompts/get":
		result = map[string]any{"messages": []any{map[string]any{"role": "user", "content": map[string]any{"type": "text", "text": "hello from " + p.Name}}}}
	case "completion/complete":
		result = map[string]any{"completion": map[string]any{"values": []string{"scripted-completion"}}}
	case "tools/call":
		result = map[string]any{"content": []any{map[string]any{"type": "text", "text": "hello"}}}
	case "resources/subscribe":
		s.write(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{}})
		s.write(map[string]any{"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": map[string]any{"uri": p.URI}})
		return
	default:
		s.write(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": -32601, "message": "method not found: " + method}})
		return
	}
	s.write(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

// scriptedServerTOML is one [servers.NAME] table running the scripted
// upstream with env (KEY = "value" pairs, TOML inline-table syntax).
func scriptedServerTOML(t *testing.T, name, log string, env ...string) string {
	t.Helper()
	kv := []string{fmt.Sprintf("%s = \"1\"", scriptedMarker), fmt.Sprintf("%s = %q", scriptedLog, log)}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		kv = append(kv, fmt.Sprintf("%s = %q", k, v))
	}
	return fmt.Sprintf("\n[servers.%s]\ncommand = %q\nserver_id = %q\nenv = { %s }\n", name, selfExe(t), name, strings.Join(kv, ", "))
}

// scriptedEnv is the environment of a hub that wraps the scripted upstream
// (`sigil-hub -- <test binary>`): the wrapped server inherits it.
func scriptedEnv(log string, env ...string) []string {
	return append([]string{scriptedMarker + "=1", scriptedLog + "=" + log}, env...)
}

// fileHas reports whether the file at path contains s.
func fileHas(path, s string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s)
}
