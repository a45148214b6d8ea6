// Package policy is sigil-hub's embedded warranty.md engine: it parses an
// operator's markdown policy offline, computes the same policyHash Sigil Sign
// computes, verifies the optional Ed25519 signature block (strict CC-1
// framing) and evaluates wire intents in the documented order with the
// documented LEX_* / SIGIL_* codes (docs/protocol.md#the-embedded-policy;
// the intents are docs/protocol.md#the-intent-for-a-tool-call).
//
// It owns: the warranty.md grammar for the sections it implements (## mcp,
// ## tool_calls, ## custom, ## execution_limits, the root version line and
// ## signature), the canonical policy JSON and its hash, the evaluator and
// the in-memory execution-limit counter. Every section it does not implement
// (## evm, ## soft_limits, ## repository, ## filesystem, ## git,
// ## database) is rejected at parse time, never silently ignored.
//
// It must import only the standard library, golang.org/x/text (for the
// ICU-compatible key collation of the policy hash) and internal/strictjson
// (sigil-hub's one JSON scanner, for the fast read of an intent and the
// JavaScript number and string forms of the policy hash). It must not
// import mcp-go, any other sigil-hub package, or do I/O; it starts no
// goroutines.
package policy
