package hub

import "github.com/sigilcore/sigil-hub/authz"

// LocalAuthorizer returns the embedded policy engine that decides calls when
// the hub runs with a local policy (--policy, or policy = "..."), so that the
// command can serve an approval surface over its holds (README "Offline: a
// local policy instead of Sigil Sign"). It returns nil when the hub asks
// Sigil Sign (or a `sigil-hub sign`) instead: holds then live with the
// signer, which has its own page. Safe for concurrent use.
func (h *Hub) LocalAuthorizer() *authz.Local {
	l, _ := h.authorizer.(*authz.Local)
	return l
}
