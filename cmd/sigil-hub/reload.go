package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/sigilcore/sigil-hub/hub"
)

// reloadPoll is how often the config file and the overlay are checked for
// changes. A change is applied once the files stayed the same for one more
// poll, so an editor's several writes make one reload.
const reloadPoll = 500 * time.Millisecond

// reloader applies edits of the config file, the overlay and the local
// policy file to a running hub (hub.Reconfigure): on SIGHUP, and when one
// of the files' content changes. Polling sees every way editors save (in place, or a new file
// renamed over the old) and needs no dependency. A config that does not
// parse, or changes a start-only setting, is refused with a log line and
// the hub keeps serving the config it has.
type reloader struct {
	f                cliFlags
	command, environ []string
	getenv           func(string) string
	key              string
	h                *hub.Hub
	log              *slog.Logger
	level            *slog.LevelVar
	redact           *redactWriter
	files            []string // the config file and the overlay (which may not exist yet)
	policy           string   // the local policy file of the config in force, "" for Sign
}

// watched is every file whose change reloads.
func (r *reloader) watched() []string {
	if r.policy == "" {
		return r.files
	}
	return append(slices.Clip(r.files), r.policy)
}

func (r *reloader) run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	notifyReload(hup)
	defer signal.Stop(hup)
	r.log.Info("watching the config for changes: save the file (or send SIGHUP) to reload", "files", r.watched())
	last := r.fingerprint()
	pending := false
	t := time.NewTicker(reloadPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			pending = false
			r.reload(ctx, "SIGHUP")
			last = r.fingerprint() // the reload may watch another policy file
		case <-t.C:
			fp := r.fingerprint()
			switch {
			case fp != last:
				last, pending = fp, true // wait until it stays the same
			case pending:
				pending = false
				r.reload(ctx, "file changed")
				last = r.fingerprint()
			}
		}
	}
}

// fingerprint sums the watched files' contents (a missing file counts).
func (r *reloader) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	for _, name := range r.watched() {
		b, err := os.ReadFile(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			h.Write([]byte{0})
		case err != nil:
			h.Write([]byte{1})
			h.Write([]byte(err.Error()))
		default:
			h.Write([]byte{2})
			h.Write(b)
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// reload reads the config again and applies it.
func (r *reloader) reload(ctx context.Context, why string) {
	cfg, _, err := loadConfig(r.f, r.command, r.environ, r.getenv)
	if err != nil {
		r.log.Error("config not reloaded: the hub keeps serving the previous config; fix the file and save it again", "trigger", why, "err", err)
		return
	}
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		r.log.Error("config not reloaded: the hub keeps serving the previous config", "trigger", why, "err", err)
		return
	}
	secrets := secretsOf(r.key, r.environ, cfg)
	r.redact.add(secrets)
	res, err := r.h.Reconfigure(ctx, cfg, secrets)
	if err != nil {
		r.log.Error("config not reloaded", "trigger", why, "err", err)
		return
	}
	r.level.Set(level)
	r.policy = cfg.Policy
	if res.Empty() {
		r.log.Info("config reloaded: nothing changed", "trigger", why)
	}
}
