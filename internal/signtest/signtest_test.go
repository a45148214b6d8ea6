package signtest

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestServer(t *testing.T) {
	s := New(t, Options{APIKey: "k", Decide: func(r Request) Reply {
		if r.Tool == "deny" {
			return Deny("E", "no")
		}
		return Pending("h1")
	}})
	get := func(path, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(body, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/authorize", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name       string
		do         func() (int, string)
		code       int
		bodyPrefix string
	}{
		{"healthz", func() (int, string) { return get("/healthz", "") }, 200, `{"status":"ok"}`},
		{"wrong key", func() (int, string) { return post(`{}`, "bad") }, 401, `{"status":"ERROR"`},
		{"deny", func() (int, string) {
			return post(`{"txCommit":"t","intent":{"action":"mcp.s.deny","metadata":{"serverId":"s","toolName":"deny"}}}`, "k")
		}, 200, `{"error_code":"E"`},
		{"pending", func() (int, string) { return post(`{"intent":{"action":"x"}}`, "k") }, 202, `{"hold_id":"h1"`},
		{"hold registered", func() (int, string) { return get("/v1/holds/h1", "k") }, 200, `{"hold_id":"h1","status":"PENDING"}`},
		{"hold wrong key", func() (int, string) { return get("/v1/holds/h1", "x") }, 401, ``},
		{"hold unknown", func() (int, string) { return get("/v1/holds/nope", "k") }, 404, ``},
		{"jwks", func() (int, string) { return get("/.well-known/jwks.json", "") }, 200, `{"keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"signtest-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := tt.do()
			if code != tt.code || !strings.HasPrefix(body, tt.bodyPrefix) {
				t.Errorf("got %d %s, want %d %s...", code, body, tt.code, tt.bodyPrefix)
			}
		})
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[1].Action != "mcp.s.deny" || reqs[1].ServerID != "s" || reqs[1].Tool != "deny" || reqs[1].TxCommit != "t" {
		t.Errorf("Requests = %+v", reqs)
	}
	if got := s.HoldLookups(); len(got) != 3 {
		t.Errorf("HoldLookups = %v", got)
	}
	if s.JWKSFetches() != 1 {
		t.Errorf("JWKSFetches = %d", s.JWKSFetches())
	}
}

func TestClosedURLRefuses(t *testing.T) {
	_, err := http.Get(ClosedURL(t) + "/healthz")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
}
