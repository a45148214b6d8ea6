package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSeed(t *testing.T) {
	env := func(k string) string { return map[string]string{"TOKEN": "tok-123"}[k] }
	s, err := ParseSeed([]byte(`{"signUrl": "http://127.0.0.1:9/", "logLevel": "debug", "serverId": "gh", "serverName": "GitHub",
		"pendingTimeout": 1500, "upstream": {"headers": {"Authorization": "Bearer ${TOKEN}"}},
		"extractors": {"fetch": {"url": "req.url", "method": "req.method"}, "write": {"path": "p", "action": "file_write"}}}`), env)
	if err != nil {
		t.Fatal(err)
	}
	if s.SignURL != "http://127.0.0.1:9" || s.LogLevel != "debug" || s.ServerID != "gh" || s.ServerName != "GitHub" || s.PendingTimeout != 1500*time.Millisecond {
		t.Fatalf("%+v", s)
	}
	if s.Headers["Authorization"] != "Bearer tok-123" {
		t.Fatalf("headers %v", s.Headers)
	}
	if x := s.Extractors["fetch"]; x.Fields["url"] != "req.url" || x.Fields["method"] != "req.method" || s.Extractors["write"].Action != "file_write" {
		t.Fatalf("extractors %+v", s.Extractors)
	}
	if s, err := ParseSeed([]byte(`{}`), env); err != nil || s.SignURL != "" || s.Headers != nil {
		t.Fatalf("empty file: %+v %v", s, err)
	}
}

func TestParseSeedErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not an object", `[]`, "invalid JSON"},
		{"trailing", `{} {}`, "invalid JSON"},
		{"duplicate", `{"logLevel":"info","logLevel":"debug"}`, "duplicate key"},
		{"unknown", `{"foo": 1}`, "foo: unknown key"},
		{"case", `{"signURL": "https://x"}`, "did you mean signUrl?"},
		{"snake", `{"pending_timeout": 1}`, "did you mean pendingTimeout?"},
		{"api key", `{"apiKey": "k"}`, "apiKey: the Sigil API key is never read"},
		{"bypass", `{"unsafeBypass": true}`, "unsafeBypass: unsafe bypass"},
		{"sign url", `{"signUrl": "http://sign.example.com"}`, "signUrl:"},
		{"log level", `{"logLevel": "loud"}`, "logLevel: must be debug"},
		{"server id type", `{"serverId": 3}`, "serverId: must be a string"},
		{"pending float", `{"pendingTimeout": 1.5}`, "pendingTimeout: must be a positive whole number"},
		{"pending zero", `{"pendingTimeout": 0}`, "pendingTimeout: must be a positive whole number"},
		{"upstream key", `{"upstream": {"command": "x"}}`, "upstream.command: unknown key"},
		{"headers type", `{"upstream": {"headers": []}}`, "upstream.headers: must be an object"},
		{"raw header", `{"upstream": {"headers": {"X-Key": "abc"}}}`, "upstream.headers.X-Key: the value must come from the environment"},
		{"unset var", `{"upstream": {"headers": {"X-Key": "$NOPE"}}}`, "variable NOPE is not set"},
		{"hub secret", `{"upstream": {"headers": {"X-Key": "$SIGIL_API_KEY"}}}`, "SIGIL_API_KEY must not be passed to an upstream"},
		{"extractor field", `{"extractors": {"t": {"host": "a"}}}`, "extractors.t.host: unknown key"},
		{"extractor empty", `{"extractors": {"t": {"action": "x"}}}`, "extractors.t: must map at least one"},
		{"extractor method", `{"extractors": {"t": {"method": "m"}}}`, "method is only used together with url"},
		{"extractor path", `{"extractors": {"t": {"url": "a..b"}}}`, "extractors.t"},
		{"extractor type", `{"extractors": {"t": {"url": 1}}}`, "extractors.t.url: must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSeed([]byte(tc.in), func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSeed(%s) = %v, want an error containing %q", tc.in, err, tc.want)
			}
		})
	}
}

// TestParseSeedNeverQuotesHeaderValues: neither a raw header value nor a
// JSON syntax error inside one is ever quoted.
func TestParseSeedNeverQuotesHeaderValues(t *testing.T) {
	const secret = "sk_live_0123456789abcdefABCDEF"
	for _, in := range []string{
		`{"upstream": {"headers": {"Authorization": "Bearer ` + secret + `"}}}`,
		`{"upstream": {"headers": {"Authorization": "Bearer ${T}` + secret + `"}}}`,
		`{"upstream": {"headers": {"Authorization": "` + secret + "\x01" + `"}}}`,
		`{"upstream": {"headers": {"Authorization": ` + secret + `}}}`,
	} {
		_, err := ParseSeed([]byte(in), func(string) string { return "x" })
		if err == nil || strings.Contains(err.Error(), secret[3:]) {
			t.Fatalf("error %v for a raw header value", err)
		}
	}
}
