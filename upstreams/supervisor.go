package upstreams

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Run supervises the upstream until ctx is done: connect (spawn or dial),
// settle the protocol era (server/discover, then, unless the upstream speaks
// 2026-07-28, initialize at 2025-11-25 and notifications/initialized:
// era.go), list what the server advertises, serve; on child death or connection loss
// fail in-flight calls at once (ErrLost), then restart after a backoff of 1s
// doubling to 30s with jitter, re-initialize and re-list. A failing upstream
// never makes Run return an error. Run returns nil only after ctx is done AND
// the child process and its process group are gone. Call it at most once;
// a second call returns an error at once.
func (u *Upstream) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return fmt.Errorf("upstream %q: Run called twice", u.spec.Name)
	}
	defer u.settle()
	for attempt := 0; ctx.Err() == nil; attempt++ {
		u.setState(Starting, u.Snapshot().Err)
		s, err := u.connect(ctx)
		if err == nil {
			u.settle()
			attempt = 0
			err = u.serve(ctx, s)
		}
		if ctx.Err() != nil {
			break
		}
		d := backoffDelay(attempt, u.tun.backoffMin, u.tun.backoffMax, u.tun.jitter)
		u.log.Warn("upstream failed; retrying", "event", "upstream_exited", "err", err, "retry_in", d)
		u.setState(Backoff, err)
		u.settle()
		select {
		case <-ctx.Done():
			u.setState(Stopped, err)
			return nil
		case <-time.After(d):
		}
	}
	u.setState(Stopped, nil)
	return nil
}

// backoffDelay returns the wait before retry number attempt (0-based):
// min·2^attempt capped at max, minus up to 20% jitter (so never above max).
func backoffDelay(attempt int, min, max time.Duration, jitter func() float64) time.Duration {
	d := max
	if attempt < 32 {
		if x := min << attempt; x > 0 && x < max {
			d = x
		}
	}
	j := rand.Float64
	if jitter != nil {
		j = jitter
	}
	return d - time.Duration(j()*0.2*float64(d))
}

// connect makes one connection attempt, bounded by InitTimeout: spawn or
// dial, handshake, first listing. On success the session is published and
// the snapshot is Ready.
func (u *Upstream) connect(ctx context.Context) (*session, error) {
	if u.tun.dial != nil {
		return u.tun.dial(ctx)
	}
	s, err := u.connectOnce(ctx)
	h := u.needsAuthorization(err)
	if h == nil {
		return s, err
	}
	// No usable token: run the browser flow (Snapshot.Err says so
	// meanwhile), then connect again with the new token.
	if aerr := u.authorize(ctx, h); aerr != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.spec.Name, aerr)
	}
	return u.connectOnce(ctx)
}

// connectOnce is one connect attempt.
func (u *Upstream) connectOnce(ctx context.Context) (*session, error) {
	ictx, cancel := context.WithTimeout(ctx, u.spec.InitTimeout)
	defer cancel()
	var s *session
	var err error
	switch {
	case u.spec.Command != "" && u.spec.URL != "":
		return nil, fmt.Errorf("upstream %q: both command and url are set", u.spec.Name)
	case u.spec.Command != "":
		s, err = u.connectStdio(ictx)
	case u.spec.URL != "":
		s, err = u.dialRemote(ictx, ctx)
		err = u.authHint(err)
	default:
		return nil, fmt.Errorf("upstream %q: neither command nor url is set", u.spec.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.spec.Name, err)
	}
	if s.init.modern {
		s.startListen(ctx, ictx)
	}
	l, err := s.listKinds(ictx, kindTools|kindPrompts|kindResources|kindTemplates)
	if err != nil {
		s.close()
		if s.proc != nil {
			err = fmt.Errorf("%w (%s)", err, s.proc.describe())
		}
		return nil, fmt.Errorf("upstream %q: first listing: %w", u.spec.Name, err)
	}
	u.sess.Store(s)
	u.update(func(snap *Snapshot) bool {
		snap.State, snap.Err = Ready, nil
		snap.Tools, snap.Prompts, snap.Resources, snap.Templates = l.Tools, l.Prompts, l.Resources, l.Templates
		snap.ServerInfo = s.init.serverInfo
		snap.Capabilities = s.init.capabilities
		snap.Instructions = s.init.instructions
		snap.ProtocolVersion = s.init.protocolVersion
		return true
	})
	u.log.Info("upstream ready", "event", "upstream_ready", "protocol_version", s.init.protocolVersion,
		"tools", len(l.Tools), "prompts", len(l.Prompts), "resources", len(l.Resources), "templates", len(l.Templates))
	return s, nil
}

// serve runs a Ready session until it is lost or ctx ends, then tears it
// down (in-flight calls fail with ErrLost) and returns why it ended.
func (u *Upstream) serve(ctx context.Context, s *session) error {
	s.goBG(func() { s.relistLoop(ctx) })
	if s.proc == nil && !s.init.modern { // 2026-07-28 has no ping: health is requests that succeed
		s.goBG(func() { s.pingLoop(ctx) })
	}
	var exited <-chan struct{}
	if s.proc != nil {
		exited = s.proc.exited
	}
	select {
	case <-ctx.Done():
	case <-s.lost.Done():
	case <-exited:
		// The child died but a grandchild may still hold stdout open.
		s.markLost(errors.New("process exited"))
	}
	var err error
	if ctx.Err() == nil {
		// Not ready from the moment the session is gone, with the reason
		// known so far: stopping the process can take a while, and a call
		// meanwhile must not find a "ready" upstream with no session and
		// no reason. Run records the full reason once it is stopped.
		err = fmt.Errorf("upstream %q: connection lost: %w", u.spec.Name, context.Cause(s.lost))
		u.setState(Backoff, err)
	}
	u.sess.CompareAndSwap(s, nil)
	s.close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if s.proc != nil {
		err = fmt.Errorf("%w (%s)", err, s.proc.describe())
	}
	return err
}
