package hub

import (
	"strconv"

	"github.com/sigilcore/sigil-hub/front"
)

// The hub's two hooks into tool pinning (package pins): the tools/call
// check here, and the listing check in view.go (pinHidden).

// pinCheck is the tools/call pin hook: the current definition's hash, or
// an error when strict pinning hides the tool. An upstream that no longer
// lists the tool gets no hash (it answers for its own unknown tool).
func (h *Hub) pinCheck(u *upstream, tool, exposed string) (string, error) {
	if h.pins == nil {
		return "", nil
	}
	defer func() {
		if h.pins.TakeReloaded() { // e.g. an accept: republish the lists
			h.markChanged()
		}
	}()
	for _, it := range u.conn.Snapshot().Tools {
		if it.Name != tool {
			continue
		}
		v := h.pins.Check(u.serverID, tool, it.Raw)
		h.pins.Flush()
		if h.pins.Blocked(v) {
			return "", &front.Error{Code: front.CodeInvalidParams,
				Message: "tool " + strconv.Quote(exposed) + " is hidden: its definition changed since it was pinned; review it, then run `sigil-hub pins accept " + u.serverID + " " + tool + "`",
				Data:    map[string]any{"reason": "tool_definition_changed", "tool": exposed, "server_id": u.serverID, "pinned_sha256": v.Pinned, "current_sha256": v.Hash}}
		}
		return v.Hash, nil
	}
	return "", nil
}

// refreshPins re-reads a changed pin file before a list is answered and
// republishes the view (an accept un-hides tools without a restart).
func (h *Hub) refreshPins() {
	if h.pins == nil {
		return
	}
	h.pins.Reload()
	if h.pins.TakeReloaded() {
		h.publish()
	}
}
