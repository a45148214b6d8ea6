package pins

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPinStore(t *testing.T) {
	v1 := json.RawMessage(`{"name":"victim","description":"v1","inputSchema":{"type":"object"}}`)
	v1Reordered := json.RawMessage(`{ "inputSchema":{"type":"object"}, "description":"v1", "name":"victim" }`)
	v2 := json.RawMessage(`{"name":"victim","description":"v2","inputSchema":{"type":"object"}}`)
	for _, tc := range []struct {
		name        string
		mode        string
		defs        []json.RawMessage // listed in order
		wantChanged bool              // of the last one
		wantBlocked bool
		wantPending bool
	}{
		{"first sight pins", "strict", []json.RawMessage{v1}, false, false, false},
		{"canonical form: member order ignored", "strict", []json.RawMessage{v1, v1Reordered}, false, false, false},
		{"strict hides a change", "strict", []json.RawMessage{v1, v2}, true, true, true},
		{"warn serves a change", "warn", []json.RawMessage{v1, v2}, true, false, true},
		{"back to the pinned definition", "strict", []json.RawMessage{v1, v2, v1}, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d", "pins.json")
			s, err := NewStore(tc.mode, path, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			var v Verdict
			for _, d := range tc.defs {
				v = s.Check("srv", "victim", d)
				s.Flush()
			}
			if v.Changed != tc.wantChanged || s.Blocked(v) != tc.wantBlocked || v.Hash != ToolHash(tc.defs[len(tc.defs)-1]) {
				t.Fatalf("verdict %+v blocked %v", v, s.Blocked(v))
			}
			p, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			e := p["srv"]["victim"]
			if e.SHA256 != ToolHash(v1) || (e.Pending != "") != tc.wantPending {
				t.Fatalf("entry %+v", e)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("pin file mode: %v %v", st, err)
			}
		})
	}
}

func TestPinsAcceptReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	v1, v2 := json.RawMessage(`{"name":"t","description":"1"}`), json.RawMessage(`{"name":"t","description":"2"}`)
	s, err := NewStore("strict", path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.Check("a", "t", v1)
	s.Check("b", "t", v1)
	if v := s.Check("a", "t", v2); !s.Blocked(v) {
		t.Fatal("change not blocked")
	}
	s.Check("b", "t", v2)
	s.Flush()
	done, err := Accept(path, "a", "")
	if err != nil || !slices.Equal(done, []string{"a/t"}) {
		t.Fatalf("accept: %v %v", done, err)
	}
	if v := s.Check("a", "t", v2); s.Blocked(v) || v.Changed {
		t.Fatalf("after accept: %+v", v)
	}
	if v := s.Check("b", "t", v2); !s.Blocked(v) {
		t.Fatal("accept of a also accepted b")
	}
	s.Flush()
	done, err = Reset(path, "")
	if err != nil || len(done) != 2 {
		t.Fatalf("reset: %v %v", done, err)
	}
	if v := s.Check("b", "t", v2); s.Blocked(v) {
		t.Fatal("after reset: a definition is pinned again on first sight")
	}
}

func TestPinStoreInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStore("strict", path, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("invalid pin file accepted")
	}
	if s, err := NewStore("off", path, nil); s != nil || err != nil {
		t.Fatalf("off: %v %v", s, err)
	}
}

// TestPinStoreLooksAtTheFileWhenItMatters: a call whose definition matches
// its pin looks at the pin file at most once per pinStatEvery, but one that
// would pin a new tool or be refused reads it first, so another writer's
// pins are never overwritten and an accept takes effect at once.
func TestPinStoreLooksAtTheFileWhenItMatters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	v1, v2 := json.RawMessage(`{"name":"t","description":"1"}`), json.RawMessage(`{"name":"t","description":"2"}`)
	s, err := NewStore("strict", path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewStore("strict", path, slog.New(slog.DiscardHandler)) // another hub on the same file
	if err != nil {
		t.Fatal(err)
	}
	s.Check("a", "t", v1)
	s.Flush()
	// The other hub pins a tool of its own; this one then pins a new tool
	// within the same second: it reads the file before writing it.
	other.Check("o", "t", v1)
	other.Flush()
	s.Check("a", "new", v1)
	s.Flush()
	p, _, err := readPins(path)
	if err != nil || p["o"]["t"].SHA256 == "" || p["a"]["new"].SHA256 == "" {
		t.Fatalf("pins after two writers: %v %v", p, err)
	}
	// The file changes under a matching definition (another hub pinned a
	// different one): seen once the second is up, not on every call.
	s.Check("a", "t", v1)
	if _, err := Reset(path, "a"); err != nil {
		t.Fatal(err)
	}
	other.Reload()
	other.Check("a", "t", v2)
	other.Flush()
	if v := s.Check("a", "t", v1); v.Changed {
		t.Fatalf("the file was looked at again within %v: %+v", pinStatEvery, v)
	}
	s.mu.Lock()
	s.statAt = s.statAt.Add(-pinStatEvery)
	s.mu.Unlock()
	if v := s.Check("a", "t", v1); !s.Blocked(v) {
		t.Fatalf("after %v the changed pin file was not seen: %+v", pinStatEvery, v)
	}
	if !s.TakeReloaded() || s.TakeReloaded() {
		t.Fatal("takeReloaded: want true once after a re-read, then false")
	}
}
