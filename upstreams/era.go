package upstreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// This file decides an upstream's protocol era, as the 2026-07-28 revision
// of MCP says a client does (its stdio and Streamable HTTP bindings,
// "Backward Compatibility"): the hub first sends server/discover with the
// request _meta of 2026-07-28. A DiscoverResult that lists 2026-07-28 means
// the upstream speaks it ("modern": no initialize, every request carries
// its own _meta; modern.go). Anything else that is an answer, and on stdio
// silence or a child that exits, means an older server ("legacy"): it gets
// initialize, as before. The fallback never hangs on one error code:
// legacy servers answer -32601, -32602 or -32600, a plain 400, or nothing.

// The eras Spec.Era selects.
const (
	// EraDefault probes with server/discover. An upstream that speaks only
	// 2026-07-28 is spoken to in it; one that also lists an older version
	// (a dual-era server) gets initialize, so that its server→client
	// requests (sampling, elicitation, roots) still reach the hub, which
	// does not relay input_required results yet.
	EraDefault = ""
	// EraPreferModern probes with server/discover and speaks 2026-07-28 to
	// every upstream that offers it, dual-era ones included.
	EraPreferModern = "prefer-modern"
	// EraLegacy sends initialize without a probe, as before 2026-07-28.
	EraLegacy = "legacy"
)

// modernVersion is the protocol version of the modern era the hub speaks.
const modernVersion = "2026-07-28"

// defaultProbeTimeout bounds the server/discover probe when
// Spec.ProbeTimeout is zero.
const defaultProbeTimeout = 5 * time.Second

// Error codes of the 2026-07-28 revision that a probe can get back.
const (
	codeHeaderMismatch             = -32020
	codeMissingRequiredCapability  = -32021
	codeUnsupportedProtocolVersion = -32022
	codeInvalidParams              = -32602
)

// probeTimeout is the probe's bound: Spec.ProbeTimeout (5 s if zero), at
// most a quarter of the start-up budget, so that a server that stays
// silent still gets initialize in time.
func (u *Upstream) probeTimeout() time.Duration {
	d := u.spec.ProbeTimeout
	if d <= 0 {
		d = defaultProbeTimeout
	}
	return min(d, u.spec.InitTimeout/4)
}

// probes reports whether the next connection starts with a probe: not for
// EraLegacy, and not once an upstream's legacy verdict stands (it is kept
// until a legacy handshake fails).
func (u *Upstream) probes() bool {
	return u.spec.Era != EraLegacy && !u.legacyKnown.Load()
}

// RequestMeta is what a modern upstream is told about the client behind one
// request: its capabilities and identity, its log level and its trace
// context, which the hub sets per request (WithRequestMeta) from the
// calling client's own. A request without one (the hub's own listings and
// re-listings) carries the hub's identity and capabilities (Spec.ClientName,
// Spec.ClientVersion, Spec.Capabilities). The protocol version is not the
// caller's to choose: it is the one the upstream speaks. Legacy upstreams
// ignore it (their client context was fixed by initialize).
type RequestMeta struct {
	// Capabilities is the clientCapabilities object to declare (only what
	// the hub can relay); nil means the hub's own.
	Capabilities json.RawMessage
	// ClientInfo is the clientInfo object ({name, version, …}) to declare,
	// as the client sent it; nil means the hub's own.
	ClientInfo json.RawMessage
	// LogLevel is the client's log level for this request ("" means none:
	// the upstream then sends no notifications/message for it).
	LogLevel string
	// Trace is the W3C trace context of the request (the _meta members
	// traceparent, tracestate and baggage), passed as sent; members with
	// another name, or a value that is not a JSON string, are left out.
	Trace []TraceMember
}

// TraceMember is one W3C trace context member of a request's _meta: its
// name and its value's bytes.
type TraceMember struct {
	Name  string
	Value json.RawMessage
}

type requestMetaKey struct{}

// WithRequestMeta returns ctx carrying m for the requests made with it.
func WithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, requestMetaKey{}, m)
}

// RequestMetaFrom returns the RequestMeta ctx carries, if any.
func RequestMetaFrom(ctx context.Context) (RequestMeta, bool) {
	m, ok := ctx.Value(requestMetaKey{}).(RequestMeta)
	return m, ok
}

// discoverResult is the part of a DiscoverResult the hub reads.
type discoverResult struct {
	ResultType        string                     `json:"resultType"`
	SupportedVersions []string                   `json:"supportedVersions"`
	Capabilities      json.RawMessage            `json:"capabilities"`
	Instructions      string                     `json:"instructions"`
	Meta              map[string]json.RawMessage `json:"_meta"`
}

// dualEra reports whether the server also lists a version older than
// 2026-07-28 (one it would serve with initialize).
func (d *discoverResult) dualEra() bool {
	return slices.ContainsFunc(d.SupportedVersions, func(v string) bool { return v < modernVersion })
}

// verdict is what a probe concluded.
type verdict int

const (
	verdictLegacy  verdict = iota // send initialize on this connection
	verdictModern                 // speak 2026-07-28; the session's init is set
	verdictRespawn                // the child exited on the probe: start it again and send initialize
)

// probe sends server/discover (on a modernConn around s.c, which becomes
// s.c when the verdict is modern: adoptDiscover) and reads the answer. stdio says whether
// the connection is a child's pipes (a timeout or an exit then means
// legacy) or HTTP (where they are errors: a 5xx, a network failure or
// silence is no verdict). An error is returned for what is no verdict:
// the connection attempt fails and is retried.
func (s *session) probe(ctx context.Context, stdio bool) (verdict, error) {
	m := s.u.newModernConn(s.c, stdio)
	pt := s.u.probeTimeout()
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithValue(ctx, noCancelKey{}, true), pt)
		st := &callStatus{}
		res, err := m.call(context.WithValue(pctx, callStatusKey{}, st), "server/discover", nil)
		timedOut := err != nil && pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var rpc *RPCError
		var hs *HTTPStatusError
		switch {
		case err == nil:
			var d discoverResult
			if json.Unmarshal(res, &d) != nil || !slices.Contains(d.SupportedVersions, modernVersion) ||
				d.ResultType != "" && d.ResultType != "complete" {
				s.u.log.Debug("server/discover answered without 2026-07-28: legacy", "result_bytes", len(res))
				return verdictLegacy, nil
			}
			if d.dualEra() && s.u.spec.Era == EraDefault {
				s.u.log.Debug("server/discover: a dual-era server; speaking the legacy protocol to it", "supported_versions", d.SupportedVersions)
				return verdictLegacy, nil
			}
			s.adoptDiscover(m, &d)
			return verdictModern, nil
		case !stdio && st.code.Load() >= 500:
			// A 5xx with a JSON-RPC body comes back as an error answer:
			// it is a failing server, not an older one.
			return 0, fmt.Errorf("server/discover: %w", &HTTPStatusError{Status: int(st.code.Load())})
		case errors.As(err, &rpc):
			switch rpc.Code {
			case codeUnsupportedProtocolVersion:
				var data struct {
					Supported []string `json:"supported"`
				}
				_ = json.Unmarshal(rpc.Data, &data)
				if !slices.Contains(data.Supported, modernVersion) {
					s.u.log.Debug("server/discover: 2026-07-28 unsupported: legacy", "supported", data.Supported)
					return verdictLegacy, nil
				}
				if attempt == 0 {
					continue // it lists the version it refused: ask once more
				}
				return 0, fmt.Errorf("server/discover: the server refuses protocol version %s although it lists it as supported: %w", modernVersion, err)
			case codeHeaderMismatch, codeMissingRequiredCapability:
				// Only a modern server knows these codes; the request
				// was the hub's fault, so the server is modern.
				s.u.log.Warn("server/discover refused the hub's request; treating the upstream as 2026-07-28 with unknown capabilities", "err", err)
				s.adoptDiscover(m, nil)
				return verdictModern, nil
			}
			s.u.log.Debug("server/discover got an error answer: legacy", "err", err)
			return verdictLegacy, nil
		case errors.Is(err, ErrInvalidResponse):
			s.u.log.Debug("server/discover got an invalid answer: legacy", "err", err)
			return verdictLegacy, nil
		case stdio && timedOut:
			s.u.log.Info("no answer to server/discover; sending initialize", "waited", pt)
			return verdictLegacy, nil
		case stdio && (s.isLost() || errors.Is(err, ErrLost) || errors.Is(err, ErrUnavailable)):
			return verdictRespawn, nil
		case !stdio && timedOut:
			return 0, fmt.Errorf("server/discover: no answer within %s", pt)
		case !stdio && errors.As(err, &hs) && hs.Status >= 400 && hs.Status < 500:
			s.u.log.Debug("server/discover got an HTTP 4xx: legacy", "status", hs.Status)
			return verdictLegacy, nil
		}
		return 0, fmt.Errorf("server/discover: %w", err)
	}
}

// adoptDiscover makes s modern: m becomes its conn, and a modern server's
// DiscoverResult (nil: none, so the capabilities are unknown and every
// list is tried) its init.
func (s *session) adoptDiscover(m *modernConn, d *discoverResult) {
	s.c, s.init.modern = m, true
	if d == nil {
		_ = s.adopt(modernVersion, nil, nil, "")
		s.init.has, s.init.unknownCaps = [3]bool{true, true, true}, true
		return
	}
	if s.adopt(modernVersion, d.Meta["io.modelcontextprotocol/serverInfo"], d.Capabilities, d.Instructions) != nil {
		s.u.log.Warn("server/discover: capabilities are not an object; none assumed")
	}
}

// noCancelKey marks a request's ctx: when it ends, no
// notifications/cancelled is sent (the probe: an older server gets
// nothing but server/discover before initialize).
type noCancelKey struct{}

// connectStdio spawns the child and settles its era: the probe, then
// initialize unless it is modern; a child that exited on the probe is
// started again and gets initialize straight away.
func (u *Upstream) connectStdio(ctx context.Context) (*session, error) {
	s, err := u.dialStdio()
	if err != nil {
		return nil, err
	}
	fail := func(s *session, err error) (*session, error) {
		s.close()
		return nil, fmt.Errorf("%w (%s)", err, s.proc.describe())
	}
	probed := u.probes()
	if probed {
		v, err := s.probe(ctx, true)
		switch {
		case err != nil:
			return fail(s, err)
		case v == verdictModern:
			return s, nil
		case v == verdictRespawn:
			s.close()
			u.log.Info("upstream exited on server/discover; starting it again for initialize", "exit", s.proc.describe())
			if s, err = u.dialStdio(); err != nil {
				return nil, err
			}
		}
	}
	if err := s.handshake(ctx); err != nil {
		u.legacyKnown.Store(false)
		return fail(s, err)
	}
	if probed {
		u.legacyKnown.Store(true)
	}
	return s, nil
}

// probeRemote dials a remote upstream the modern way and probes it. It
// returns the Ready-to-list session when the upstream is modern, and
// (nil, nil) when it is legacy: the caller then dials as before.
func (u *Upstream) probeRemote(ctx, connCtx context.Context) (*session, error) {
	s, err := u.startStreamable(ctx, connCtx, true)
	if err != nil {
		return nil, err
	}
	v, err := s.probe(ctx, false)
	if err == nil && v == verdictModern {
		return s, nil
	}
	if err = s.abandon(err); err != nil {
		return nil, fmt.Errorf("streamable HTTP %q: %w", u.spec.URL, err)
	}
	return nil, nil
}

// modernStatus maps an HTTP 404 a modern request got (mcp-go reports it as
// a terminated session and drops the body) to the JSON-RPC error its body
// carries (the 2026-07-28 HTTP binding answers -32601 with 404), else to
// the status.
func modernStatus(st *callStatus) error {
	if b := st.body.Load(); b != nil {
		var m struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(*b, &m) == nil && len(m.Error) > 0 {
			if err := decodeRPCError(m.Error); !errors.Is(err, ErrInvalidResponse) {
				return err
			}
		}
	}
	return &HTTPStatusError{Status: http.StatusNotFound}
}
