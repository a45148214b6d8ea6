package signer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

const testPolicy = `version: 2.0.0

## mcp
allowed_servers: github, slack
allowed_tools: github.*, slack.send_message
blocked_tools: github.delete_repository
require_approval: slack.send_message
`

const testAPIKey = "sk_sigil_test_local"

// fakeClock is a settable clock (no wall time in decisions under test).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestServer(t testing.TB, mod func(*Options)) *Server {
	t.Helper()
	p, err := policy.Parse([]byte(testPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Policy: p, Key: testKey(t), APIKey: testAPIKey}
	if mod != nil {
		mod(&o)
	}
	return New(o)
}

// serve runs h on a loopback listener for the test's duration.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// wireBody builds a real hub request body for a tools/call.
func wireBody(t testing.TB, server, tool, args string) (body []byte, txCommit string) {
	t.Helper()
	in, err := authz.NewIntent(authz.Request{ServerID: server, Tool: tool, Arguments: json.RawMessage(args), TaskID: "task-1", AgentID: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	return authz.AuthorizeBody(in, "agent-1", authz.NewNonce()), in.TxCommit
}

type resp struct {
	status int
	header http.Header
	body   []byte
	m      map[string]any
}

func post(t testing.TB, url, auth, ctype string, body []byte) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) resp {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	out := resp{status: r.StatusCode, header: r.Header, body: b}
	_ = json.Unmarshal(b, &out.m)
	return out
}

func get(t testing.TB, url, auth string) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func TestAuthorizeDecisions(t *testing.T) {
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())
	tests := []struct {
		name, server, tool   string
		tamper               bool
		wantHTTP             int
		wantStatus, wantCode string
		wantKeys             string
	}{
		{"allowed", "github", "create_issue", false, 200, "APPROVED", "", "intent_attestation,policy_hash,status,task_id"},
		{"blocked tool", "github", "delete_repository", false, 200, "DENIED", "SIGIL_POLICY_VIOLATION", "error_code,message,policy_hash,status"},
		{"unlisted server", "jira", "create_issue", false, 200, "DENIED", "SIGIL_POLICY_VIOLATION", "error_code,message,policy_hash,status"},
		{"unlisted tool", "slack", "list_channels", false, 200, "DENIED", "SIGIL_POLICY_VIOLATION", "error_code,message,policy_hash,status"},
		{"require approval", "slack", "send_message", false, 202, "PENDING", "", "hold_id,message,status"},
		{"txCommit mismatch", "github", "create_issue", true, 200, "DENIED", "SIGIL_VALIDATION_ERROR", "error_code,message,policy_hash,status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, commit := wireBody(t, tc.server, tc.tool, `{"title":"x"}`)
			if tc.tamper {
				other := strings.Repeat("0", 64)
				body = bytes.Replace(body, []byte(commit), []byte(other), 1)
				commit = other
			}
			r := post(t, ts.URL+"/v1/authorize", "Bearer "+testAPIKey, "application/json", body)
			if r.status != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.wantHTTP, r.body)
			}
			if got := r.header.Get("X-SOF-Version"); got != SOFVersion {
				t.Errorf("X-SOF-Version = %q", got)
			}
			if r.m["status"] != tc.wantStatus || (tc.wantCode != "" && r.m["error_code"] != tc.wantCode) {
				t.Fatalf("body %s: want status %s code %s", r.body, tc.wantStatus, tc.wantCode)
			}
			if got := keys(r.m); got != tc.wantKeys {
				t.Errorf("members %s, want %s", got, tc.wantKeys)
			}
			switch tc.wantStatus {
			case "APPROVED":
				if r.m["policy_hash"] != srv.PolicyHash() || r.m["task_id"] != "task-1" {
					t.Errorf("approval body %s", r.body)
				}
				checkAttestation(t, srv, r.m["intent_attestation"].(string), commit)
			case "PENDING":
				if id, _ := r.m["hold_id"].(string); !strings.HasPrefix(id, "hold-") || len(id) != 5+32 {
					t.Errorf("hold_id %q", id)
				}
			}
		})
	}
}

// checkAttestation verifies tok by hand against the JWKS the server serves.
func checkAttestation(t *testing.T, srv *Server, tok, txCommit string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("attestation has %d segments", len(parts))
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if want := `{"alg":"EdDSA","kid":"` + srv.Kid() + `"}`; string(hdr) != want {
		t.Errorf("header %s, want %s", hdr, want)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(srv.pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Error("signature does not verify")
	}
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if err := json.Unmarshal(cb, &c); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(txCommit))
	want := map[string]any{
		"iss": "sigil-core", "kid": srv.Kid(), "intentHash": hex.EncodeToString(sum[:]), "policyHash": srv.PolicyHash(),
		"decision": "ALLOWED", "agentId": "agent-1", "framework": "mcp-proxy", "provenance": "agent",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != "sigil-sign" {
		t.Errorf("aud = %v", c["aud"])
	}
	if c["exp"].(float64)-c["iat"].(float64) != 60 {
		t.Errorf("exp - iat = %v", c["exp"].(float64)-c["iat"].(float64))
	}
}

func TestAuthorizeRejectsBodies(t *testing.T) {
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())
	good, commit := wireBody(t, "github", "create_issue", `{}`)
	intent := string(good[bytes.Index(good, []byte(`"intent":`))+len(`"intent":`) : len(good)-1])
	wrap := func(extra string) []byte {
		return []byte(`{"framework":"mcp-proxy","agentId":"a","txCommit":"` + commit + `",` + extra + `"intent":` + intent + `}`)
	}
	tests := []struct {
		name   string
		ctype  string
		body   []byte
		status int
	}{
		{"duplicate key", "application/json", wrap(`"agentId":"b",`), 400},
		{"duplicate key inside intent", "application/json", []byte(`{"framework":"f","agentId":"a","txCommit":"` + commit + `","intent":{"action":"x","action":"y"}}`), 400},
		{"invalid utf-8", "application/json", wrap("\"context\":\"\xff\",\""[:len("\"context\":\"\xff\",")]), 400},
		{"unknown member", "application/json", wrap(`"extra":1,`), 400},
		{"not an object", "application/json", []byte(`[1]`), 400},
		{"trailing data", "application/json", append(append([]byte{}, good...), []byte(` {}`)...), 400},
		{"uppercase txCommit", "application/json", bytes.Replace(good, []byte(commit), []byte(strings.ToUpper(commit)), 1), 400},
		{"missing intent", "application/json", []byte(`{"framework":"f","agentId":"a","txCommit":"` + commit + `"}`), 400},
		{"intent not an object", "application/json", []byte(`{"framework":"f","agentId":"a","txCommit":"` + commit + `","intent":[1]}`), 400},
		{"empty agentId", "application/json", []byte(`{"framework":"f","agentId":"","txCommit":"` + commit + `","intent":{}}`), 400},
		{"framework not a string", "application/json", []byte(`{"framework":1,"agentId":"a","txCommit":"` + commit + `","intent":{}}`), 400},
		{"chainId fraction", "application/json", wrap(`"chainId":1.5,`), 400},
		{"too deep", "application/json", wrap(`"delegation":` + strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70) + `,`), 400},
		{"too large", "application/json", wrap(`"context":"` + strings.Repeat("a", MaxBodyBytes) + `",`), 413},
		{"wrong media type", "text/plain", good, 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, ts.URL+"/v1/authorize", "Bearer "+testAPIKey, tc.ctype, tc.body)
			if r.status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.m["status"] != "DENIED" || r.m["error_code"] != "SIGIL_VALIDATION_ERROR" || r.m["message"] == "" {
				t.Errorf("body %s", r.body)
			}
		})
	}
	t.Run("control: the good body is approved", func(t *testing.T) {
		if r := post(t, ts.URL+"/v1/authorize", "Bearer "+testAPIKey, "application/json", good); r.m["status"] != "APPROVED" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestAPIKey(t *testing.T) {
	body, _ := wireBody(t, "github", "create_issue", `{}`)
	tests := []struct {
		name, apiKey, auth string
		want               int
	}{
		{"configured key", testAPIKey, "Bearer " + testAPIKey, 200},
		{"wrong key", testAPIKey, "Bearer sk_other", 401},
		{"no header", testAPIKey, "", 401},
		{"basic scheme", testAPIKey, "Basic " + testAPIKey, 401},
		{"open signer takes any bearer", "", "Bearer anything", 200},
		{"open signer still needs a bearer", "", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, func(o *Options) { o.APIKey = tc.apiKey })
			ts := serve(t, srv.Handler())
			r := post(t, ts.URL+"/v1/authorize", tc.auth, "application/json", body)
			if r.status != tc.want {
				t.Fatalf("authorize: HTTP %d, want %d", r.status, tc.want)
			}
			if r := get(t, ts.URL+"/v1/holds/hold-x", tc.auth); (r.status == 401) != (tc.want == 401) {
				t.Fatalf("hold lookup: HTTP %d", r.status)
			}
		})
	}
}

func TestJWKSAndHealthz(t *testing.T) {
	srv := newTestServer(t, func(o *Options) { o.Kid = "local-1" })
	ts := serve(t, srv.Handler())
	r := get(t, ts.URL+"/.well-known/jwks.json", "")
	ks, _ := r.m["keys"].([]any)
	if r.status != 200 || len(ks) != 1 {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	k := ks[0].(map[string]any)
	want := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "local-1", "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(srv.pub)}
	if len(k) != len(want) {
		t.Errorf("jwk members: %v", k)
	}
	for n, v := range want {
		if k[n] != v {
			t.Errorf("jwk %s = %v, want %v", n, k[n], v)
		}
	}
	if r := get(t, ts.URL+"/healthz", ""); r.status != 200 || string(r.body) != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
}

func TestHoldLifecycle(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	log := &testbuf.Buffer{}
	srv := newTestServer(t, func(o *Options) { o.Now = clk.Now; o.DecisionLog = log })
	ts := serve(t, srv.Handler())
	auth := "Bearer " + testAPIKey
	authorize := func(body []byte) resp {
		return post(t, ts.URL+"/v1/authorize", auth, "application/json", body)
	}
	lookup := func(id string) (int, string) {
		r := get(t, ts.URL+"/v1/holds/"+id, auth)
		s, _ := r.m["status"].(string)
		return r.status, s
	}
	body, _ := wireBody(t, "slack", "send_message", `{"text":"hi"}`)

	r := authorize(body)
	id, _ := r.m["hold_id"].(string)
	if r.status != 202 || id == "" {
		t.Fatalf("first call: %d %s", r.status, r.body)
	}
	if code, st := lookup(id); code != 200 || st != authz.HoldPending {
		t.Fatalf("lookup: %d %s", code, st)
	}
	if code, _ := lookup("hold-unknown"); code != 404 {
		t.Fatalf("unknown hold: HTTP %d", code)
	}
	if _, err := srv.local.Resolve(id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.local.Resolve(id, false); !errors.Is(err, authz.ErrHoldDecided) {
		t.Fatalf("second resolve: %v", err)
	}
	if code, st := lookup(id); code != 200 || st != authz.HoldApproved {
		t.Fatalf("after approval: %d %s", code, st)
	}
	// Same intent, fresh nonce: approved once, without a new hold.
	body2 := bytes.Replace(body, []byte(`"request_nonce":"`), []byte(`"request_nonce":"x`), 1)
	if r := authorize(body2); r.status != 200 || r.m["status"] != "APPROVED" {
		t.Fatalf("re-submission: %d %s", r.status, r.body)
	}
	if n := len(srv.local.Holds()); n != 1 {
		t.Fatalf("%d holds after the re-submission, want 1", n)
	}
	// The approval is consumed: the next identical call is held again.
	r = authorize(body)
	id2, _ := r.m["hold_id"].(string)
	if r.status != 202 || id2 == "" || id2 == id {
		t.Fatalf("after consumption: %d %s", r.status, r.body)
	}
	// Another agent's identical intent never consumes an approval.
	if _, err := srv.local.Resolve(id2, true); err != nil {
		t.Fatal(err)
	}
	other := bytes.Replace(body, []byte(`"agentId":"agent-1"`), []byte(`"agentId":"agent-2"`), 1)
	if r := authorize(other); r.status != 202 {
		t.Fatalf("other agent: %d %s", r.status, r.body)
	}
	// Holds expire after 24 h, approvals with them.
	if r := authorize(body); r.status != 200 {
		t.Fatalf("consuming the second approval: %d %s", r.status, r.body)
	}
	r = authorize(body)
	id3, _ := r.m["hold_id"].(string)
	clk.Add(DefaultHoldTTL)
	if code, st := lookup(id3); code != 200 || st != authz.HoldExpired {
		t.Fatalf("after 24h: %d %s", code, st)
	}
	if _, err := srv.local.Resolve(id3, true); !errors.Is(err, authz.ErrHoldDecided) {
		t.Fatalf("resolving an expired hold: %v", err)
	}
	if _, err := srv.local.Resolve("hold-nope", true); !errors.Is(err, authz.ErrNoHold) {
		t.Fatalf("resolving an unknown hold: %v", err)
	}
	// Every decision is one JSON line in the decision log.
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) < 8 {
		t.Fatalf("decision log has %d lines", len(lines))
	}
	for _, l := range lines {
		var rec authz.Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Decision == "" || rec.PolicyHash != srv.PolicyHash() {
			t.Errorf("decision log line %q: %v", l, err)
		}
		if strings.Contains(l, `"hi"`) {
			t.Errorf("decision log line carries arguments: %s", l)
		}
	}
}

// swapHandler serves whichever signer is current: a "restart" swaps in a
// fresh one on the same address.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// tamperAttestations corrupts the claims of every intent attestation.
func tamperAttestations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var m map[string]string
		if r.URL.Path == "/v1/authorize" && json.Unmarshal(body, &m) == nil && m["intent_attestation"] != "" {
			parts := strings.Split(m["intent_attestation"], ".")
			c, _ := base64.RawURLEncoding.DecodeString(parts[1])
			c = bytes.Replace(c, []byte(`"agentId":"`), []byte(`"agentId":"x`), 1)
			parts[1] = base64.RawURLEncoding.EncodeToString(c)
			m["intent_attestation"] = strings.Join(parts, ".")
			body, _ = json.Marshal(m)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// callResult is the outcome of one Sign client call.
type callResult struct {
	d   authz.Decision
	err error
}

// startCall runs one enforce-mode Sign client call in the background and
// returns its result channel and the hold id once the call is held.
func startCall(t *testing.T, url, server, tool string) (<-chan callResult, <-chan string) {
	t.Helper()
	c := authz.NewSign(authz.SignOptions{URL: url, APIKey: testAPIKey, Verify: authz.VerifyEnforce, PendingTimeout: 2 * time.Minute})
	t.Cleanup(c.Close)
	held := make(chan string, 1)
	done := make(chan callResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	go func() {
		d, err := c.Authorize(ctx, authz.Request{ServerID: server, Tool: tool, Arguments: json.RawMessage(`{"text":"hello"}`),
			TaskID: "task-1", AgentID: "agent-1",
			OnHold: func(id string, _ time.Duration) {
				select {
				case held <- id:
				default:
				}
			}})
		done <- callResult{d, err}
	}()
	return done, held
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestSignClientEnforce(t *testing.T) {
	t.Run("approve and deny", func(t *testing.T) {
		srv := newTestServer(t, nil)
		ts := serve(t, srv.Handler())
		for _, tc := range []struct {
			tool string
			want authz.Verdict
			code string
		}{
			{"create_issue", authz.Approved, ""},
			{"delete_repository", authz.Denied, "SIGIL_POLICY_VIOLATION"},
		} {
			done, _ := startCall(t, ts.URL, "github", tc.tool)
			r := wait(t, done, "the call")
			if r.err != nil || r.d.Verdict != tc.want || r.d.ErrorCode != tc.code {
				t.Fatalf("%s: %+v %v", tc.tool, r.d, r.err)
			}
			if tc.want == authz.Approved && (r.d.Attestation == "" || r.d.PolicyHash != srv.PolicyHash()) {
				t.Fatalf("approval without a verified attestation: %+v", r.d)
			}
		}
	})
	t.Run("tampered attestation is rejected", func(t *testing.T) {
		srv := newTestServer(t, nil)
		ts := serve(t, tamperAttestations(srv.Handler()))
		done, _ := startCall(t, ts.URL, "github", "create_issue")
		r := wait(t, done, "the call")
		if r.err != nil || r.d.Verdict != authz.Denied || r.d.ErrorCode != "SIGIL_DECISION_VERIFICATION_FAILED" {
			t.Fatalf("%+v %v", r.d, r.err)
		}
	})
	t.Run("pending then approved, exactly once", func(t *testing.T) {
		srv := newTestServer(t, nil)
		ts := serve(t, srv.Handler())
		done, held := startCall(t, ts.URL, "slack", "send_message")
		id := wait(t, held, "the hold")
		if r := adminPost(t, ts.URL, srv, id, "approve"); r.status != 200 {
			t.Fatalf("admin approve: %d %s", r.status, r.body)
		}
		r := wait(t, done, "the call")
		if r.err != nil || r.d.Verdict != authz.Approved || r.d.HoldID != id || r.d.Attestation == "" {
			t.Fatalf("%+v %v", r.d, r.err)
		}
		// The approval was consumed: the same call again is held anew.
		done, held = startCall(t, ts.URL, "slack", "send_message")
		if id2 := wait(t, held, "the second hold"); id2 == id {
			t.Fatalf("the second call reused hold %s", id)
		}
		hs := srv.local.Holds()
		if len(hs) != 2 || !hs[0].Consumed || hs[1].State != authz.HoldPending {
			t.Fatalf("holds: %+v", hs)
		}
		if _, err := srv.local.Resolve(hs[1].ID, false); err != nil {
			t.Fatal(err)
		}
		if r := wait(t, done, "the second call"); r.d.Verdict != authz.Denied {
			t.Fatalf("%+v %v", r.d, r.err)
		}
	})
	t.Run("pending then denied", func(t *testing.T) {
		srv := newTestServer(t, nil)
		ts := serve(t, srv.Handler())
		done, held := startCall(t, ts.URL, "slack", "send_message")
		id := wait(t, held, "the hold")
		if r := adminPost(t, ts.URL, srv, id, "deny"); r.status != 200 {
			t.Fatalf("admin deny: %d %s", r.status, r.body)
		}
		r := wait(t, done, "the call")
		if r.err != nil || r.d.Verdict != authz.Denied || r.d.ErrorCode != "SIGIL_HOLD_DENIED" || r.d.HoldID != id {
			t.Fatalf("%+v %v", r.d, r.err)
		}
	})
	t.Run("signer restart forgets the hold: denied", func(t *testing.T) {
		sw := &swapHandler{}
		first := newTestServer(t, nil)
		sw.set(first.Handler())
		ts := serve(t, sw)
		done, held := startCall(t, ts.URL, "slack", "send_message")
		id := wait(t, held, "the hold")
		sw.set(newTestServer(t, nil).Handler())                  // restarted: memory is gone
		if _, err := first.local.Resolve(id, true); err != nil { // too late: nobody asks the old one
			t.Fatal(err)
		}
		r := wait(t, done, "the call")
		if r.err != nil || r.d.Verdict != authz.Denied || r.d.ErrorCode != "SIGIL_HOLD_EXPIRED" {
			t.Fatalf("%+v %v", r.d, r.err)
		}
	})
}

// adminPost resolves a hold the way the CLI does (bearer admin token).
func adminPost(t *testing.T, base string, srv *Server, id, verb string) resp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/holds/"+id+"/"+verb, nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken())
	return do(t, req)
}
