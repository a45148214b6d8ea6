package hub

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestRenamedKeepsEveryOtherByte(t *testing.T) {
	raw := []byte(`{"inputSchema":{"anyOf":[{"type":"string"}],"x-vendor":1}, "name" : "read",  "_meta":{"a/b":true}}`)
	got := string(renamed(raw, "files__read", "read"))
	want := `{"inputSchema":{"anyOf":[{"type":"string"}],"x-vendor":1}, "name" : "files__read",  "_meta":{"a/b":true}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestPageCursor(t *testing.T) {
	items := make([][]byte, 5)
	for i := range items {
		items[i] = []byte{byte('0' + i)}
	}
	var all []string
	cursor := ""
	for {
		pg, next, err := page(toRaw(items), cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range pg {
			all = append(all, string(it))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(all, "") != "01234" {
		t.Fatalf("pages gave %q", all)
	}
	if _, _, err := page(toRaw(items), "garbage!", 2); err == nil {
		t.Fatal("invalid cursor accepted")
	}
}

func toRaw(items [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
