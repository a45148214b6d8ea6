// Package strictjson is sigil-hub's one JSON toolkit. It validates and
// splits JSON more strictly than encoding/json: exactly one value, valid
// UTF-8 everywhere, no duplicate object keys at any level, and a nesting
// limit. Over a document it has accepted it offers a token walk (Tokens,
// AppendUTF16) for callers that rewrite JSON, such as the pg-commit
// canonicalization, so that no other package needs a scanner of its own.
// It also writes JSON: strings as encoding/json writes them (AppendString)
// and strings and numbers as JavaScript's JSON.stringify writes them
// (AppendJSString, AppendJSNumber), each rule written once.
//
// sigil-hub runs the check on every client message, every upstream message
// and every policy-service response before anything else reads them, so it
// is a single pass with no reflection and few allocations. Decoding into Go
// types stays with encoding/json, which is safe once a document has passed
// here.
//
// It imports only the standard library and must not import any other
// sigil-hub package or mcp-go.
package strictjson
