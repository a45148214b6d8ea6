// Package signtest is a real HTTP test double of the Sigil Sign policy
// service (docs/protocol.md), listening on 127.0.0.1, for the tests of
// any package: authz unit tests, hub end-to-end tests.
//
// It owns: POST /v1/authorize (scripted per request through Options.Decide,
// recording every request), GET /v1/holds/{id} (answered from SetHold),
// GET /.well-known/jwks.json (the double's Ed25519 signing key, kid
// "signtest-1"), GET /healthz, Ed25519 intent attestations on approvals, and
// fault injection (hang, trickle, close without a response, TLS).
//
// It imports only the standard library and testing helpers; it must not
// import any sigil-hub package (authz tests import it) and is never imported
// by production code.
package signtest
