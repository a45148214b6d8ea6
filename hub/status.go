package hub

import (
	"context"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/router"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Status is what a started hub holds after every upstream's first start
// attempt: the raw material of the inventory behind `sigil-hub check` and
// `sigil-hub tools` (cmd/sigil-hub/inventory.go). A plain value.
type Status struct {
	// Upstreams are the enabled servers, in config order.
	Upstreams []UpstreamStatus
	// Table is the routing table tools/list serves for these snapshots,
	// and Problems what the router reported while building it.
	Table    *router.Table
	Problems []router.Problem
}

// UpstreamStatus is one enabled upstream in a Status.
type UpstreamStatus struct {
	// Server is the upstream's configuration.
	Server config.Server
	// Snapshot is its connection state and lists when Status looked.
	Snapshot *upstreams.Snapshot
	// Settled is true when the first start attempt finished (ready or
	// failed) before the startup timeout; StartTime is how long it took,
	// measured from Run's start. Zero if !Settled.
	Settled   bool
	StartTime time.Duration
}

// Status waits, like the first tools/list does, until every upstream has
// finished its first start attempt (bounded by the startup timeout and ctx)
// and reports the hub's upstreams and routing table. Run must be running
// (or about to run) in another goroutine; Status neither starts nor stops
// anything, sends no request to the policy service and never calls a tool.
// It is safe for concurrent use.
func (h *Hub) Status(ctx context.Context) Status {
	f := h.fleet.Load()
	start := time.Now()
	if st := h.started.Load(); st != 0 {
		start = time.Unix(0, st)
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(startupTimeout(f.cfg)))
	defer cancel()
	st := Status{Upstreams: make([]UpstreamStatus, len(f.ups))}
	var wg sync.WaitGroup
	for i, u := range f.ups {
		wg.Go(func() {
			if u.conn.WaitSettled(wctx) == nil {
				st.Upstreams[i].Settled, st.Upstreams[i].StartTime = true, time.Since(start)
			}
		})
	}
	wg.Wait()

	// The same sources rebuild gives the router, so the table is the one
	// tools/list serves for these snapshots.
	snaps := make(map[string]*upstreams.Snapshot, len(f.ups))
	for i, u := range f.ups {
		snaps[u.name] = u.conn.Snapshot()
		st.Upstreams[i].Server, st.Upstreams[i].Snapshot = f.server(u.name), snaps[u.name]
	}
	st.Table, st.Problems = h.route(f, snaps)
	return st
}
