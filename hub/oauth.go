package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"

	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// OAuthTokenFile is the token file of serverID's OAuth tokens in dir (the
// folder given as Options.OAuthDir). Pure.
func OAuthTokenFile(dir, serverID string) string {
	return filepath.Join(dir, oauthFileName(serverID))
}

// oauthFileName is the token file of a serverId: the serverId itself when
// it is a safe file name, else a sanitized form plus a short hash.
func oauthFileName(serverID string) string {
	safe := true
	b := []byte(serverID)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0) {
			b[i] = '_'
			safe = false
		}
	}
	if safe && len(b) <= 64 {
		return serverID + ".json"
	}
	sum := sha256.Sum256([]byte(serverID))
	if len(b) > 48 {
		b = b[:48]
	}
	return string(b) + "-" + hex.EncodeToString(sum[:4]) + ".json"
}

// oauthSpec is the upstreams.OAuth of a server (nil without oauth).
func (h *Hub) oauthSpec(s config.Server) *upstreams.OAuth {
	if s.OAuth == nil {
		return nil
	}
	if h.oauthCB == nil && !h.opts.OAuthStoredOnly {
		h.oauthCB = upstreams.NewOAuthCallback(upstreams.OAuthCallbackOptions{
			Addr:   h.opts.OAuthCallback,
			Logger: h.log.With("component", "oauth"),
			Open:   h.opts.OpenBrowser,
		})
	}
	o := &upstreams.OAuth{
		ClientID:     s.OAuth.ClientID,
		ClientSecret: s.OAuth.ClientSecret,
		Scopes:       s.OAuth.Scopes,
		Callback:     h.oauthCB, // nil with OAuthStoredOnly: never made
	}
	if h.opts.OAuthDir != "" {
		o.TokenFile = OAuthTokenFile(h.opts.OAuthDir, s.ServerID)
	}
	return o
}
