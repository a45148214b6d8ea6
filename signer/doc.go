// Package signer is a local, conforming Sigil Sign: the production
// counterpart of internal/signtest, served by `sigil-hub sign` so that
// sigil-hub (or any Sigil client) can run offline against a warranty.md.
//
// It is an HTTP face over authz.Local, which decides, keeps the holds and
// the record of recent decisions (one store for the signer and for the
// hub's --policy mode). It owns:
//   - POST /v1/authorize (docs/protocol.md#the-authorize-request): strict request
//     parsing and the exact Sign answers to what Local.Submit decided
//     (APPROVED 200 with an intent attestation, DENIED 200, PENDING 202 with
//     a hold id);
//   - Ed25519 intent attestations (docs/protocol.md#attestations-and-the-jwks)
//     and the JWKS that verifies them
//     (GET /.well-known/jwks.json), plus key storage (LoadOrCreateKey);
//   - GET /v1/holds/{id} over Local's holds, which live in memory
//     only: a restarted signer forgets them, so a waiting client gets 404
//     and denies;
//   - the decision log (one JSON line per record of Local's);
//   - the admin surface for people on this machine: the approval page (GET /)
//     and its JSON API (/admin/...), reachable only over loopback and guarded
//     against other origins (DNS rebinding, CSRF, framing) by a per-process
//     admin token, which the page trades for a server-side session. The same
//     surface (Admin, over any authz.Local) serves the hub's own holds in
//     --policy mode, so both approval pages share one set of protections;
//   - what a person approves is what they see: every client-chosen field is
//     shown through Visible / VisibleJSON (control, bidirectional and
//     invisible characters escaped), and arguments are never cut.
//
// /v1/* on a loopback address answers only requests naming a loopback Host
// and no other web origin, as the admin surface does.
//
// signer imports only the standard library, authz (Local), authz/policy and
// internal/strictjson. It must not import hub, router, upstreams, cmd or
// mcp-go, and it never writes to stdout.
package signer
