package audit_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/audit"
)

var update = flag.Bool("update", false, "rewrite testdata/records.golden")

// TestRecordGolden pins the JSON shape of a record: member names, order,
// which members are omitted when empty, time and latency formatting.
func TestRecordGolden(t *testing.T) {
	records := []audit.Record{
		{ // every field set
			Time:           time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600)),
			CallID:         "c-00000001",
			Session:        "s-7f3a",
			ClientName:     "claude-desktop <untrusted> & \u2028",
			ServerID:       "files",
			Upstream:       "filesystem",
			Tool:           "write_file",
			ExposedTool:    "files__write_file",
			ArgsSHA256:     testHash,
			Decision:       "PENDING→APPROVED",
			Reason:         "approved",
			ErrorCode:      "",
			HoldID:         "hold_123",
			PolicyHash:     "sha256:abc",
			AuthzMillis:    2034.56789,
			UpstreamMillis: 0.0004,
			Bypassed:       false,
			Outcome:        audit.OutcomeForwarded,
		},
		{ // a denial
			Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), CallID: "c-2", Session: "s-7f3a",
			ServerID: "files", Upstream: "filesystem", Tool: "delete", ExposedTool: "files__delete",
			ArgsSHA256: testHash, Decision: "DENIED", Reason: "policy", ErrorCode: "SIGIL_POLICY_VIOLATION",
			PolicyHash: "sha256:abc", AuthzMillis: 12.5, Outcome: audit.OutcomeBlocked,
		},
		{ // a bypassed call (--unsafe-bypass)
			Time: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC), CallID: "c-3", ServerID: "files",
			Tool: "read", ExposedTool: "files__read", ArgsSHA256: testHash, Decision: "UNREACHABLE",
			Reason: "unreachable", ErrorCode: "SIGIL_UNREACHABLE", AuthzMillis: 3000, UpstreamMillis: 4.25,
			Bypassed: true, Outcome: audit.OutcomeForwarded,
		},
		{ // minimal: an unknown tool, a newline in a client-chosen name
			Time: time.Date(2026, 3, 1, 12, 0, 2, 0, time.UTC), CallID: "c-4",
			ExposedTool: "nope\n{\"forged\":true}", Outcome: audit.OutcomeUnknownTool,
		},
	}
	var b bytes.Buffer
	l := audit.New(&b, audit.Options{})
	for _, r := range records {
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	const prose = "# Golden audit records (audit/record_test.go TestRecordGolden; regenerate with -update).\n" +
		"# Pins member names and order, omission of empty optional members, UTC time, microsecond\n" +
		"# latencies, and that a newline in a value cannot start a new line. Lines after this header\n" +
		"# are exactly what Log.Write emits.\n"
	got := prose + b.String()
	path := filepath.Join("testdata", "records.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != strings.ReplaceAll(string(want), "\r\n", "\n") { // a CRLF checkout
		t.Errorf("records differ from %s (-want +got):\n-%s\n+%s", path, want, got)
	}
	if n := len(lines(t, b.Bytes())); n != len(records) {
		t.Errorf("%d lines for %d records", n, len(records))
	}
}

// TestRecordHasNoValueFields pins the Record type: every field is a string,
// number, bool or time, so no argument value (an object, raw JSON, any) can
// ride along, and the member names are the documented, stable ones.
func TestRecordHasNoValueFields(t *testing.T) {
	want := []string{
		"time", "call_id", "session", "client_name", "server_id", "upstream", "tool", "exposed_tool",
		"args_sha256", "decision", "reason", "error_code", "hold_id", "policy_hash", "authz_ms",
		"upstream_ms", "bypassed", "outcome",
	}
	var got []string
	rt := reflect.TypeFor[audit.Record]()
	for f := range rt.Fields() {
		switch f.Type {
		case reflect.TypeFor[string](), reflect.TypeFor[float64](), reflect.TypeFor[bool](), reflect.TypeFor[time.Time]():
		default:
			t.Errorf("field %s has type %v, which could carry argument values", f.Name, f.Type)
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		got = append(got, name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("JSON member names (-want +got):\n-%v\n+%v", want, got)
	}
}
