// Package authz is sigil-hub's client for the remote policy service, Sigil
// Sign (POST /v1/authorize). It decides, per tools/call, whether the call may
// reach its upstream, and it fails closed.
//
// It owns, in the order a call goes through them:
//   - building the intent for a call (intent.go) and its verifiable
//     txCommit, the pg-commit-v1 canonicalization (pgcommit.go), with local
//     denials for malformed or oversized input that is never sent;
//   - sending the authorize request and classifying what comes back:
//     unreachable (an error wrapping ErrUnreachable) versus a Decision
//     (sign.go, response.go);
//   - waiting out held calls (holds.go) and verifying intent
//     attestations (attest.go);
//   - a circuit breaker that fails fast (still ErrUnreachable) after
//     repeated unreachable-class failures and probes once per cooldown
//     (breaker.go).
//
// The protocol decisions it implements are docs/protocol.md: the intent,
// extractors, txCommit, statuses, retries, holds and attestations.
//
// It also holds the offline decision point: Local (local.go) decides with
// the embedded warranty.md engine in authz/policy, with the same intents,
// decisions and codes, for the hub in --policy mode and for the signer
// (`sigil-hub sign`), and keeps the one store of approval holds and recent
// decisions that both serve to people (localholds.go).
//
// Its API to the rest of the hub is the Authorizer interface and the plain
// Request and Decision types. Tool arguments travel as json.RawMessage and
// are embedded byte for byte, so the bytes authorized are the bytes forwarded.
//
// authz is a leaf: it imports only the standard library, its own
// authz/policy and sigil-hub's internal helpers (internal/strictjson). It must not import hub, router,
// upstreams, cmd or mcp-go, and it never writes to stdout.
package authz
