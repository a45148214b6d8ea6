package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// SeedFileName is the file @sigilcore/mcp-proxy reads from its working
// directory, and sigil-hub reads in wrap mode (README "Coming from
// @sigilcore/mcp-proxy").
const SeedFileName = "sigil.config.json"

// Seed is a @sigilcore/mcp-proxy configuration file (sigil.config.json)
// after strict reading and validation: the settings of one wrapped server.
// A zero field was not set in the file; the caller applies the precedence
// flag > environment > file > defaults. A plain value, read-only.
type Seed struct {
	// SignURL is signUrl, checked by authz.CheckSignURL; "" = not set.
	SignURL string
	// LogLevel is logLevel: debug, info, warn or error; "" = not set.
	LogLevel string
	// ServerID is serverId, checked like server_id; "" = derive.
	ServerID string
	// ServerName is serverName, a display label; "" = the serverId.
	ServerName string
	// PendingTimeout is pendingTimeout (integer milliseconds); 0 = not set.
	PendingTimeout time.Duration
	// Headers are upstream.headers, expanded through getenv. Every value
	// references a variable ($NAME or ${NAME}); the rules are those of a
	// server's headers in the TOML file (Server.Headers). Nil when none.
	Headers map[string]string
	// HeaderTemplates are the same headers as written in the file, their
	// references unexpanded (what `sigil-hub import` writes into a hub
	// file). Nil when none.
	HeaderTemplates map[string]string
	// Extractors are extractors: tool name → extractor, with the keys of
	// [servers.NAME.extractors.TOOL] (url, path, command, method, to,
	// action). Nil when none.
	Extractors map[string]Extractor
}

// seedKeys are the keys of the file, in the order errors list them.
var seedKeys = []string{"signUrl", "logLevel", "serverId", "serverName", "pendingTimeout", "upstream", "extractors"}

// ParseSeed reads a sigil.config.json. The JSON is read strictly
// (internal/strictjson: one object, valid UTF-8, no duplicate keys), every
// key is checked (an unknown one is an error that names it), and every
// problem is reported, each prefixed with its key path, joined with
// errors.Join. No error ever contains a header value or a variable's
// value. getenv supplies the variables headers reference (an empty result
// counts as unset). Pure; safe for concurrent use if getenv is.
func ParseSeed(data []byte, getenv func(string) string) (Seed, error) {
	if len(data) > cfgMaxFileSize {
		return Seed{}, fmt.Errorf("the file is larger than %d bytes", cfgMaxFileSize)
	}
	top, err := strictjson.Object(data, 16)
	if err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) && !errors.Is(err, strictjson.ErrDuplicateKey) && !errors.Is(err, strictjson.ErrNotObject) {
			// The detail may quote the text around the problem, which may
			// be a header being written: only the position is kept.
			return Seed{}, fmt.Errorf("invalid JSON at byte offset %d (%v)", se.Offset, se.Kind)
		}
		return Seed{}, fmt.Errorf("invalid JSON: %v", err)
	}
	p := &seedParser{getenv: getenv}
	var s Seed
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if !slices.Contains(seedKeys, k) {
			p.unknown(k, seedKeys)
		}
	}
	if p.str(top, "signUrl", &s.SignURL) {
		u, err := authz.CheckSignURL(s.SignURL)
		if err != nil {
			p.errorf("signUrl", "%v", err)
		}
		s.SignURL = u
	}
	if p.str(top, "logLevel", &s.LogLevel) {
		switch s.LogLevel {
		case "debug", "info", "warn", "error":
		default:
			p.errorf("logLevel", "must be debug, info, warn or error")
		}
	}
	if p.str(top, "serverId", &s.ServerID) {
		if err := cfgCheckServerID(s.ServerID); err != nil {
			p.errorf("serverId", "%v", err)
		}
	}
	if p.str(top, "serverName", &s.ServerName) {
		if s.ServerName == "" || len(s.ServerName) > 256 || strings.ContainsFunc(s.ServerName, cfgIsControl) {
			p.errorf("serverName", "must be 1 to 256 bytes without control characters")
		}
	}
	if raw, ok := top["pendingTimeout"]; ok {
		var ms int64
		if err := json.Unmarshal(raw, &ms); err != nil || ms <= 0 || ms > cfgMaxTimeoutMS {
			p.errorf("pendingTimeout", "must be a positive whole number of milliseconds, at most %d", cfgMaxTimeoutMS)
		} else {
			s.PendingTimeout = time.Duration(ms) * time.Millisecond
		}
	}
	if obj, ok := p.object(top, "upstream", "upstream"); ok {
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if k != "headers" {
				p.unknown("upstream."+k, []string{"headers"})
			}
		}
		if h, ok := p.object(obj, "headers", "upstream.headers"); ok {
			s.Headers, s.HeaderTemplates = p.headers(h)
		}
	}
	if ex, ok := p.object(top, "extractors", "extractors"); ok {
		s.Extractors = p.extractors(ex)
	}
	if len(p.errs) > 0 {
		return Seed{}, errors.Join(p.errs...)
	}
	return s, nil
}

type seedParser struct {
	getenv func(string) string
	errs   []error
}

func (p *seedParser) errorf(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// unknown reports an unknown key, with the known one it differs from only
// in case or spelling style, and the keys that must never be in a file.
func (p *seedParser) unknown(key string, known []string) {
	last := key[strings.LastIndexByte(key, '.')+1:]
	norm := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(last))
	switch norm {
	case "unsafebypass", "sigilunsafebypass":
		p.errorf(key, "unsafe bypass cannot be set in a config file; it is a command-line flag only (--unsafe-bypass)")
		return
	case "key", "apikey", "sigilapikey":
		p.errorf(key, "the Sigil API key is never read from a config file; set SIGIL_API_KEY in the environment")
		return
	}
	for _, k := range known {
		if strings.EqualFold(k, norm) {
			p.errorf(key, "unknown key (keys are case-sensitive camelCase: did you mean %s?)", k)
			return
		}
	}
	p.errorf(key, "unknown key (known keys here: %s)", strings.Join(known, ", "))
}

// str decodes the string at obj[k]; false when absent or not a string.
func (p *seedParser) str(obj map[string]json.RawMessage, k string, dst *string) bool {
	raw, ok := obj[k]
	if !ok {
		return false
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) && json.Unmarshal(raw, dst) == nil {
		return true
	}
	p.errorf(k, "must be a string")
	return false
}

// object decodes the JSON object at obj[k]; key is its path for errors.
func (p *seedParser) object(obj map[string]json.RawMessage, k, key string) (map[string]json.RawMessage, bool) {
	raw, ok := obj[k]
	if !ok {
		return nil, false
	}
	var out map[string]json.RawMessage
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) || json.Unmarshal(raw, &out) != nil {
		p.errorf(key, "must be an object")
		return nil, false
	}
	return out, true
}

// headers checks and expands upstream.headers with the rules of a TOML
// server's headers (cfgExpand, cfgHeaderLiteral): a value must reference
// a variable, and no value is ever quoted.
func (p *seedParser) headers(h map[string]json.RawMessage) (expanded, written map[string]string) {
	out, raw := map[string]string{}, map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		k := "upstream.headers." + name
		var v string
		if !bytes.HasPrefix(bytes.TrimSpace(h[name]), []byte(`"`)) || json.Unmarshal(h[name], &v) != nil {
			p.errorf(k, "must be a string (the value is not shown: it may be a secret)")
			continue
		}
		if !cfgHeaderName(name) {
			p.errorf(k, "is not a valid HTTP header name")
			continue
		}
		val, refs, errs := cfgExpand(v, p.getenv, true)
		if refs == 0 && len(errs) == 0 {
			p.errorf(k, "the value must come from the environment: reference a variable ($NAME or ${NAME}); "+
				"a raw value is refused because headers usually hold secrets (the value is not shown)")
			continue
		}
		if pieces, perrs, ok := cfgSplitRefs(v); ok && len(perrs) == 0 {
			if why := cfgHeaderLiteral(pieces); why != "" {
				p.errorf(k, "%s", why)
				continue
			}
		}
		for _, e := range errs {
			p.errorf(k, "%s", e)
		}
		if len(errs) > 0 {
			continue
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			p.errorf(k, "the expanded value contains a line break or NUL")
			continue
		}
		out[name], raw[name] = val, v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, raw
}

// extractors checks extractors: {"TOOL": {"url": "a.b", ...}} with the
// rules of [servers.NAME.extractors.TOOL] (docs/protocol.md#extractors).
func (p *seedParser) extractors(ex map[string]json.RawMessage) map[string]Extractor {
	out := map[string]Extractor{}
	for _, tool := range slices.Sorted(maps.Keys(ex)) {
		tk := "extractors." + tool
		if tool == "" {
			p.errorf("extractors", "a tool name must not be empty")
			continue
		}
		var fields map[string]json.RawMessage
		if !bytes.HasPrefix(bytes.TrimSpace(ex[tool]), []byte("{")) || json.Unmarshal(ex[tool], &fields) != nil {
			p.errorf(tk, "must be an object such as {\"url\": \"request.url\"}")
			continue
		}
		x := Extractor{Fields: map[string]string{}}
		bad := false
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			fk := tk + "." + f
			if !slices.Contains(cfgExtractorKeys(), f) {
				p.unknown(fk, cfgExtractorKeys())
				bad = true
				continue
			}
			var v string
			if !p.str(fields, f, &v) {
				p.errs[len(p.errs)-1] = fmt.Errorf("%s: must be a string", fk)
				bad = true
				continue
			}
			if f == "action" {
				if !cfgActionLike(v) {
					p.errorf(fk, "must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")
					bad = true
				}
				x.Action = v
				continue
			}
			x.Fields[f] = v
		}
		if bad {
			continue
		}
		if len(x.Fields) == 0 {
			p.errorf(tk, "must map at least one of url, path, command, method or to to an argument path")
			continue
		}
		if _, ok := x.Fields["method"]; ok {
			if _, ok := x.Fields["url"]; !ok {
				p.errorf(tk, "method is only used together with url")
				continue
			}
		}
		if err := authz.ValidateExtractor(&authz.Extractor{Action: x.Action, Fields: x.Fields}); err != nil {
			p.errorf(tk, "%v", err)
			continue
		}
		for f, path := range x.Fields {
			if slices.Contains(strings.Split(path, "."), "") {
				p.errorf(tk+"."+f, "must be a dot-separated argument path such as \"url\" or \"request.url\"")
			}
		}
		out[tool] = x
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
