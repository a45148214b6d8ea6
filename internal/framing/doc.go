// Package framing owns newline-delimited JSON-RPC framing, the one used on
// both of the hub's pipes: the client's stdin/stdout and a stdio upstream's
// stdout/stdin. Reader splits a stream into lines under a size cap; Writer
// writes one message per line, coalescing concurrent writes, and never lets
// a message span two lines.
//
// It knows nothing of JSON-RPC beyond "one JSON value per line" and must not
// import any other sigil-hub package.
package framing
