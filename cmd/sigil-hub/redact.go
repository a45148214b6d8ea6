package main

import (
	"bytes"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// minSecretLen is the shortest value treated as a secret to redact: shorter
// env values (ports, flags, "1") would only make logs unreadable.
const minSecretLen = 8

// secretsOf lists every value that must never appear in a log line or a
// client-visible message: the API key, the hub's own tokens and upstream
// auth, and every env and header value given to an upstream (an upstream
// that prints its token on stderr must not put it in the hub's log).
func secretsOf(key string, environ []string, cfg config.Config) []string {
	set := map[string]bool{}
	add := func(v string) {
		if len(v) >= minSecretLen {
			set[v] = true
		}
	}
	add(key)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && upstreams.HubSecret(k) {
			add(v)
			if _, tok, found := strings.Cut(v, " "); found { // "Bearer <token>"
				add(tok)
			}
		}
	}
	for _, s := range cfg.Servers {
		for k, v := range s.Env {
			if hubVariables[strings.ToUpper(k)] || !looksSecret(k, v) {
				continue
			}
			add(v)
		}
		if s.OAuth != nil {
			add(s.OAuth.ClientSecret)
		}
		for _, v := range s.Headers {
			add(v)
			if _, tok, found := strings.Cut(v, " "); found {
				add(tok)
			}
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	// Longest first, so that a secret containing another is redacted whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// looksSecret keeps ordinary env values (paths, the PATH itself) out of the
// redaction list: a wrapped server inherits the whole environment.
func looksSecret(k, v string) bool {
	if strings.ContainsAny(v, "/\\:") && !strings.Contains(strings.ToUpper(k), "KEY") && !strings.Contains(strings.ToUpper(k), "TOKEN") {
		return false
	}
	switch strings.ToUpper(k) {
	case "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR", "PWD", "OLDPWD", "HOSTNAME", "SHLVL":
		return false
	}
	return true
}

// redactWriter replaces secrets in everything written through it. The log
// handler writes one record per Write, so a secret is never split.
type redactWriter struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

func newRedactWriter(w io.Writer, secrets []string) *redactWriter {
	r := &redactWriter{w: w}
	for _, s := range secrets {
		r.secrets = append(r.secrets, []byte(s))
	}
	return r
}

// add adds secrets (a reloaded config's); none is ever removed.
func (r *redactWriter) add(secrets []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if !slices.ContainsFunc(r.secrets, func(b []byte) bool { return string(b) == s }) {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	// Longest first, so that a secret containing another is redacted whole.
	slices.SortStableFunc(r.secrets, func(a, b []byte) int { return len(b) - len(a) })
}

func (r *redactWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := p
	for _, s := range r.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte("[redacted]"))
		}
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
