package signer

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
)

// HoldDesk is what the admin surface (the approval page and its JSON API)
// decides over: the pending holds, a way to decide one, and the recent
// decisions. *Server is one (its own holds); LocalDesk adapts the hub's
// embedded engine (authz.Local) for --policy mode. Implementations must be
// safe for concurrent use, and their methods must not block on a held call.
type HoldDesk interface {
	// Holds returns the known holds, oldest first. The page shows those
	// whose State is HoldPending; the JSON API returns them all.
	Holds() []HoldInfo
	// Resolve approves (approve true) or denies a PENDING hold and returns
	// it. Errors wrap ErrNoHold (unknown id) or ErrHoldDecided (no longer
	// pending) so that the API can answer 404 or 409.
	Resolve(id string, approve bool) (HoldInfo, error)
	// Recent returns the last decision records, newest first. Records never
	// hold argument values.
	Recent() []Record
}

// AdminOptions configure an Admin. NewAdmin copies them.
type AdminOptions struct {
	// Desk is the holds the surface shows and decides. Required (NewAdmin
	// panics without it).
	Desk HoldDesk
	// Token authenticates people (the ?token= of the logged page URL, which
	// opens a page session) and the `sigil-hub holds` CLI (Bearer).
	// If empty, NewAdmin draws a random one (see Admin.Token).
	Token string
	// Name labels the page and its messages. If empty, "sigil-hub signer".
	Name string
	// PolicyHash, if set, returns the policy hash shown on the page (a
	// function: the hub's policy can be reloaded).
	PolicyHash func() string
	// Kid, if set, is the attestation key id shown on the page.
	Kid string
	// Now returns the current time (page sessions expire). If nil,
	// time.Now.
	Now func() time.Time
}

// Admin is the admin surface for people on this machine: the approval page
// (GET /) and its JSON API (GET /admin/holds, POST
// /admin/holds/{id}/approve|deny), answering only loopback requests
// addressed to its own loopback listener, with a token, CSRF and Origin
// checks (see admin.go). Safe for concurrent use.
type Admin struct {
	o        AdminOptions
	handler  http.Handler
	mu       sync.Mutex     // guards sessions
	sessions []adminSession // open page sessions, oldest first
}

// NewAdmin returns the admin surface over o.Desk. It panics when o.Desk is
// nil (a programmer error).
func NewAdmin(o AdminOptions) *Admin {
	if o.Desk == nil {
		panic("signer: NewAdmin needs a HoldDesk")
	}
	if o.Token == "" {
		o.Token = randomHex(32)
	}
	if o.Name == "" {
		o.Name = "sigil-hub signer"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Admin{o: o}
	mux := http.NewServeMux()
	a.register(mux)
	a.handler = mux
	return a
}

// register adds the admin routes to mux.
func (a *Admin) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", a.guard(a.handlePage))
	mux.HandleFunc("GET /admin/holds", a.guard(a.handleAdminList))
	mux.HandleFunc("POST /admin/holds/{id}/{verb}", a.guard(a.handleAdminResolve))
}

// Handler serves the approval page and the admin JSON API (and 404s
// elsewhere). Serve it on a loopback listener. Safe for concurrent use.
func (a *Admin) Handler() http.Handler { return a.handler }

// Token is the admin token the surface accepts. Safe for concurrent use.
func (a *Admin) Token() string { return a.o.Token }

// LocalDesk adapts the embedded policy engine's holds (the hub in --policy
// mode) to a HoldDesk. Its holds are always PENDING: authz.Local forgets a
// hold once decided or timed out, so deciding one twice answers ErrNoHold.
// The result is safe for concurrent use. It panics when l is nil.
func LocalDesk(l *authz.Local) HoldDesk {
	if l == nil {
		panic("signer: LocalDesk needs an authz.Local")
	}
	return localDesk{l: l}
}

type localDesk struct{ l *authz.Local }

func fromLocal(h authz.HoldInfo) HoldInfo {
	return HoldInfo{ID: h.ID, State: HoldPending, ServerID: h.ServerID, Tool: h.Tool, Action: h.Action, AgentID: h.AgentID,
		TaskID: h.TaskID, Rule: h.Rule, Arguments: h.Arguments, TxCommit: h.TxCommit, Created: h.Created}
}

func (d localDesk) Holds() []HoldInfo {
	hs := d.l.Holds()
	out := make([]HoldInfo, 0, len(hs))
	for _, h := range hs {
		out = append(out, fromLocal(h))
	}
	return out
}

func (d localDesk) Resolve(id string, approve bool) (HoldInfo, error) {
	h, err := d.l.Resolve(id, approve)
	if errors.Is(err, authz.ErrNoHold) {
		return HoldInfo{}, fmt.Errorf("hold %.80q is not pending (unknown, already decided or timed out): %w", id, ErrNoHold)
	}
	if err != nil {
		return HoldInfo{}, err
	}
	info := fromLocal(h)
	info.State = HoldDenied
	if approve {
		info.State = HoldApproved
	}
	return info, nil
}

func (d localDesk) Recent() []Record {
	rs := d.l.Recent()
	out := make([]Record, 0, len(rs))
	for _, r := range rs {
		out = append(out, Record{Time: r.Time, Surface: r.Surface, Decision: r.Decision, Code: r.Code, Rule: r.Rule,
			Action: r.Action, ServerID: r.ServerID, Tool: r.Tool, HoldID: r.HoldID})
	}
	return out
}
