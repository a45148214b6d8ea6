package pins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/privatefile"
)

// Entry is one pinned tool definition in the pin file.
type Entry struct {
	// SHA256 is the pinned hash: ToolHash of the definition first seen (or
	// last accepted).
	SHA256 string `json:"sha256"`
	// FirstSeen is when SHA256 was pinned.
	FirstSeen time.Time `json:"first_seen"`
	// Pending is the hash of a differing definition the upstream listed
	// since, awaiting `sigil-hub pins accept`. Empty = none.
	Pending string `json:"pending,omitempty"`
	// PendingSince is when Pending was first seen. Zero when Pending is empty.
	PendingSince time.Time `json:"pending_since,omitzero"`
}

// File is the pin file's content: serverId → upstream tool name → entry.
// A plain value: not safe for concurrent mutation.
type File map[string]map[string]Entry

// ToolHash returns the lowercase hex SHA-256 of the pg-commit-v1 canonical
// JSON of a tool definition exactly as the upstream listed it (name,
// description, schemas, annotations: all of it). A definition that cannot
// be canonicalised (a number overflowing float64) is hashed as raw bytes.
// It is safe for concurrent use.
func ToolHash(def json.RawMessage) string {
	if h, err := authz.TxCommit(def); err == nil {
		return h
	}
	sum := sha256.Sum256(def)
	return hex.EncodeToString(sum[:])
}

// Load reads the pin file at path. A missing file is an empty File.
// It is safe for concurrent use.
func Load(path string) (File, error) {
	p, _, err := readPins(path)
	return p, err
}

// Accept re-pins every pending definition of serverID (all servers when
// empty) and tool (all its tools when empty) to its pending hash, and
// returns the accepted entries as "serverId/tool" in sorted order. A running
// hub picks the change up from the file. Concurrent writers to one file
// (another accept, a running hub) may lose an update; run it by hand.
func Accept(path, serverID, tool string) ([]string, error) {
	return updatePins(path, func(p File) []string {
		var done []string
		for sid, tools := range p {
			if serverID != "" && sid != serverID {
				continue
			}
			for name, e := range tools {
				if (tool != "" && name != tool) || e.Pending == "" {
					continue
				}
				tools[name] = Entry{SHA256: e.Pending, FirstSeen: time.Now().UTC()}
				done = append(done, sid+"/"+name)
			}
		}
		return done
	})
}

// Reset forgets every pin of serverID (all servers when empty) and
// returns the forgotten entries as "serverId/tool", sorted: their current
// definitions are pinned again on next sight.
func Reset(path, serverID string) ([]string, error) {
	return updatePins(path, func(p File) []string {
		var done []string
		for sid, tools := range p {
			if serverID != "" && sid != serverID {
				continue
			}
			for name := range tools {
				done = append(done, sid+"/"+name)
			}
			delete(p, sid)
		}
		return done
	})
}

func updatePins(path string, f func(File) []string) ([]string, error) {
	p, _, err := readPins(path)
	if err != nil {
		return nil, err
	}
	done := f(p)
	sort.Strings(done)
	if len(done) == 0 {
		return nil, nil
	}
	if _, err := writePins(path, p); err != nil {
		return nil, err
	}
	return done, nil
}

// pinStamp identifies one version of the pin file on disk.
type pinStamp struct {
	mod  time.Time
	size int64
	ok   bool // the file existed
}

func statPins(path string) pinStamp {
	st, err := os.Stat(path)
	if err != nil {
		return pinStamp{}
	}
	return pinStamp{mod: st.ModTime(), size: st.Size(), ok: true}
}

func readPins(path string) (File, pinStamp, error) {
	st := statPins(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return File{}, pinStamp{}, nil
	}
	if err != nil {
		return nil, st, fmt.Errorf("pin file: %w", err)
	}
	p := File{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, st, fmt.Errorf("pin file %s is not valid: %v (fix it, or run `sigil-hub pins reset` to start over)", path, err)
		}
	}
	for sid, tools := range p {
		if tools == nil {
			delete(p, sid)
		}
	}
	return p, st, nil
}

// writePins writes p to path atomically (mode 0600, folder 0700).
func writePins(path string, p File) (pinStamp, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return pinStamp{}, err
	}
	if err := privatefile.Write(path, append(data, '\n')); err != nil {
		return pinStamp{}, fmt.Errorf("pin file: %w", err)
	}
	return statPins(path), nil
}

// Store is a running hub's view of the pin file. Methods are safe for
// concurrent use.
type Store struct {
	strict bool
	path   string // "" = in memory only
	log    *slog.Logger

	mu       sync.Mutex
	pins     File
	stamp    pinStamp
	statAt   time.Time // when the pin file was last looked at
	reloaded bool      // re-read since TakeReloaded last ran
	dirty    bool
	warned   map[string]string               // serverId \x00 tool → hash last warned about
	failed   bool                            // the last write failed (logged once)
	hashes   map[string]map[string]hashedDef // serverId → tool → last definition hashed
}

// NewStore loads the pin file for a running hub; mode (the config's pin:
// "warn", "strict" or "off") "off" returns nil, and path "" keeps the pins
// in memory only. An unreadable or
// invalid pin file is an error (strict pinning must not silently restart
// from nothing).
func NewStore(mode, path string, log *slog.Logger) (*Store, error) {
	if mode == "off" {
		return nil, nil
	}
	s := &Store{strict: mode == "strict", path: path, log: log, pins: File{}, warned: map[string]string{}}
	if path != "" {
		p, st, err := readPins(path)
		if err != nil {
			return nil, err
		}
		s.pins, s.stamp = p, st
	}
	return s, nil
}

// hashLocked returns ToolHash(def), remembered per tool with the bytes it
// hashed (every tools/call checks its pin, and the definition rarely
// changes). Callers hold s.mu.
func (s *Store) hashLocked(serverID, tool string, def json.RawMessage) string {
	if e, ok := s.hashes[serverID][tool]; ok && e.def == string(def) {
		return e.hash
	}
	h := ToolHash(def)
	if s.hashes == nil {
		s.hashes = map[string]map[string]hashedDef{}
	}
	if s.hashes[serverID] == nil {
		s.hashes[serverID] = map[string]hashedDef{}
	}
	s.hashes[serverID][tool] = hashedDef{def: string(def), hash: h}
	return h
}

// hashedDef is one remembered ToolHash.
type hashedDef struct{ def, hash string }

// Verdict is the pin state of one listed definition.
type Verdict struct {
	Hash    string // the current definition's hash
	Pinned  string // the pinned hash
	Changed bool   // Hash != Pinned
}

// Blocked reports whether the definition must be hidden (strict pinning
// and a changed definition).
func (s *Store) Blocked(v Verdict) bool { return s.strict && v.Changed }

// Check pins a never-seen definition and compares a known one, recording a
// change as pending (and warning once per change). Call Flush after a
// batch. Callers must not hold s.mu.
func (s *Store) Check(serverID, tool string, def json.RawMessage) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	hash := s.hashLocked(serverID, tool, def)
	// A definition that matches its pin is the usual call: the file is
	// looked at no more than once per pinStatEvery for it (a stat per call
	// was a tenth of the binary's CPU). Anything that will write
	// the file or refuse the call reads it first: an accept takes effect
	// at the next call, and no other writer's pins are overwritten.
	s.reloadLocked(pinStatEvery)
	if e, ok := s.pins[serverID][tool]; !ok || e.SHA256 != hash || e.Pending != "" {
		s.reloadLocked(0)
	}
	tools := s.pins[serverID]
	if tools == nil {
		tools = map[string]Entry{}
		s.pins[serverID] = tools
	}
	e, ok := tools[tool]
	if !ok {
		tools[tool] = Entry{SHA256: hash, FirstSeen: time.Now().UTC()}
		s.dirty = true
		return Verdict{Hash: hash, Pinned: hash}
	}
	if e.SHA256 == hash {
		if e.Pending != "" { // the upstream went back to the pinned definition
			e.Pending, e.PendingSince = "", time.Time{}
			tools[tool] = e
			s.dirty = true
		}
		return Verdict{Hash: hash, Pinned: hash}
	}
	if e.Pending != hash {
		e.Pending, e.PendingSince = hash, time.Now().UTC()
		tools[tool] = e
		s.dirty = true
	}
	key := serverID + "\x00" + tool
	if s.warned[key] != hash {
		s.warned[key] = hash
		action := "serving it anyway (pin = \"warn\")"
		if s.strict {
			action = "tool hidden until accepted (pin = \"strict\")"
		}
		s.log.Warn("tool definition changed since it was pinned: "+action+"; review it, then run `sigil-hub pins accept "+serverID+" "+tool+"`",
			"event", "tool_definition_changed", "server_id", serverID, "tool", tool,
			"pinned_sha256", e.SHA256, "current_sha256", hash, "pin_file", s.path)
	}
	return Verdict{Hash: hash, Pinned: e.SHA256, Changed: true}
}

// Flush writes pending changes to the pin file. A write failure is logged
// (once until a write succeeds); pins stay in memory.
func (s *Store) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty || s.path == "" {
		s.dirty = false
		return
	}
	st, err := writePins(s.path, s.pins)
	if err != nil {
		if !s.failed {
			s.log.Error("cannot write the pin file: pins are kept in memory only", "pin_file", s.path, "err", err)
		}
		s.failed = true
		return
	}
	s.stamp, s.dirty, s.failed = st, false, false
}

// Reload re-reads the pin file if it changed on disk and reports whether it
// did. Callers must not hold s.mu.
func (s *Store) Reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(0)
}

// pinStatEvery bounds how often a call whose definition matches its pin
// looks at the pin file.
const pinStatEvery = time.Second

// reloadLocked re-reads the pin file if it changed on disk, unless it was
// looked at less than maxAge ago (0: look now).
func (s *Store) reloadLocked(maxAge time.Duration) bool {
	if s.path == "" {
		return false
	}
	now := time.Now()
	if maxAge > 0 && now.Sub(s.statAt) < maxAge {
		return false
	}
	s.statAt = now
	if statPins(s.path) == s.stamp {
		return false
	}
	p, st, err := readPins(s.path)
	if err != nil {
		s.log.Error("cannot re-read the pin file: keeping the pins in memory", "pin_file", s.path, "err", err)
		s.stamp = st
		return false
	}
	// Unsaved first sightings survive a reload: re-applied by the next check.
	// warned is kept: another hub writing the same file must not make this
	// one warn again about a change it already reported.
	s.pins, s.stamp, s.reloaded = p, st, true
	return true
}

// TakeReloaded reports whether the pin file was re-read since the last
// call (the view then needs republishing).
func (s *Store) TakeReloaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reloaded
	s.reloaded = false
	return r
}
