package config

import (
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ServerOAuth is a remote server's oauth setting (oauth = true, or
// oauth = { client_id, client_secret, scopes }). Part of Config: read-only
// after Parse.
type ServerOAuth struct {
	// ClientID is client_id, a pre-registered client; empty = register
	// dynamically (RFC 7591).
	ClientID string
	// ClientSecret is client_secret, expanded like headers (it must
	// reference a variable); empty = a public client.
	ClientSecret string
	// Scopes are requested at authorization; nil = none.
	Scopes []string
}

type cfgRawOAuth struct {
	ClientID     toml.Primitive `toml:"client_id"`
	ClientSecret toml.Primitive `toml:"client_secret"`
	Scopes       toml.Primitive `toml:"scopes"`
}

func cfgOAuthKeys() []string { return []string{"client_id", "client_secret", "scopes"} }

// oauth decodes a remote server's oauth key: true, false or a table.
func (p *cfgParser) oauth(prim toml.Primitive, key []string, s *Server) {
	if !cfgDefined(prim) {
		return
	}
	var v any
	if err := p.md.PrimitiveDecode(prim, &v); err == nil {
		if b, ok := v.(bool); ok {
			if b {
				s.OAuth = &ServerOAuth{}
			}
			return
		}
	}
	var raw cfgRawOAuth
	if !p.table(prim, key, &raw, `true, false or a table: oauth = { client_id = "...", client_secret = "$VAR", scopes = [...] }`) {
		return
	}
	sub := func(name string) []string { return append(slices.Clone(key), name) }
	o := &ServerOAuth{}
	p.str(raw.ClientID, sub("client_id"), &o.ClientID)
	p.strList(raw.Scopes, sub("scopes"), &o.Scopes)
	for _, sc := range o.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
			p.errorf(sub("scopes"), "scope %q is not a valid OAuth scope", sc)
		}
	}
	var secret string
	if k := sub("client_secret"); p.str(raw.ClientSecret, k, &secret) {
		val, refs, errs := cfgExpand(secret, p.getenv, !s.Disabled)
		for _, e := range errs {
			p.errorf(k, "%s", e)
		}
		switch {
		case refs == 0 && len(errs) == 0:
			p.errorf(k, "the value must come from the environment: reference a variable ($NAME or ${NAME})")
		case o.ClientID == "":
			p.errorf(k, "needs client_id")
		case len(errs) == 0 && !s.Disabled:
			o.ClientSecret = val
		}
	}
	s.OAuth = o
}

// checkOAuth validates oauth against the server's other keys.
func (p *cfgParser) checkOAuth(key func(...string) []string, s *Server) {
	if s.OAuth == nil {
		return
	}
	if s.Transport == "sse" {
		p.errorf(key("oauth"), "needs Streamable HTTP: set transport to auto or streamable")
	}
	for h := range s.Headers {
		if strings.EqualFold(h, "Authorization") {
			p.errorf(key("headers", h), "conflicts with oauth (the hub sends the OAuth token)")
		}
	}
}
