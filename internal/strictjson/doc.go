// Package strictjson validates and splits JSON more strictly than
// encoding/json: exactly one value, valid UTF-8 everywhere, no duplicate
// object keys at any level, and a nesting limit.
//
// It owns only that check. sigil-hub runs it on every client message, every
// upstream message and every policy-service response before anything else
// reads them, so it is a single pass with no reflection and few allocations.
// Decoding into Go types stays with encoding/json, which is safe once a
// document has passed here.
//
// It imports only the standard library and must not import any other
// sigil-hub package or mcp-go.
package strictjson
