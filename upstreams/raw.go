package upstreams

import (
	"bytes"
	"strconv"
	"sync"
)

// rawParams makes params reach a remote upstream byte for byte.
//
// mcp-go's transports json.Marshal the whole request, and encoding/json
// compacts and HTML-escapes ("<" → "\u003c") the output of a
// json.RawMessage. So the request carries a unique placeholder string token
// instead, and the HTTP client (postRoundTripper, http.go) swaps the token for the
// caller's bytes in the POST body. (A stdio upstream's frames are written
// from the bytes themselves: stdio_conn.go.) Tokens carry a random
// per-upstream nonce and the request's own id, so nothing else can match.
// Safe for concurrent use.
type rawParams struct {
	prefix []byte // `"sigil-raw-<nonce>-`

	mu   sync.Mutex
	next uint64
	m    map[uint64][]byte // token id → bytes; guarded by mu
}

func newRawParams(nonce string) *rawParams {
	return &rawParams{prefix: []byte(`"sigil-raw-` + nonce + `-`), m: map[uint64][]byte{}}
}

// add registers raw and returns the token's JSON string literal and a release
// func to call once the frame has been sent (or not).
func (r *rawParams) add(raw []byte) (token []byte, release func()) {
	r.mu.Lock()
	r.next++
	id := r.next
	r.m[id] = raw
	r.mu.Unlock()
	tok := make([]byte, 0, len(r.prefix)+22)
	tok = append(tok, r.prefix...)
	tok = strconv.AppendUint(tok, id, 10)
	tok = append(tok, '"')
	return tok, func() {
		r.mu.Lock()
		delete(r.m, id)
		r.mu.Unlock()
	}
}

func (r *rawParams) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m) > 0
}

// substitute replaces the first token in frame by its bytes. A request
// carries the token as its params string (`"TOKEN"`); a notification, whose
// params mcp-go encodes from a map, as `{"TOKEN":true}`.
func (r *rawParams) substitute(frame []byte) []byte {
	start, end, raw, ok := r.find(frame)
	if !ok {
		return frame
	}
	out := make([]byte, 0, len(frame)-(end-start)+len(raw))
	out = append(out, frame[:start]...)
	out = append(out, raw...)
	return append(out, frame[end:]...)
}

// find locates the first registered token in frame: frame[start:end] is to
// be replaced by raw.
func (r *rawParams) find(frame []byte) (start, end int, raw []byte, ok bool) {
	i := bytes.Index(frame, r.prefix)
	if i < 0 {
		return 0, 0, nil, false
	}
	j := i + len(r.prefix)
	k := bytes.IndexByte(frame[j:], '"') + j // the token's closing quote
	if k < j {
		return 0, 0, nil, false
	}
	id, err := strconv.ParseUint(string(frame[j:k]), 10, 64)
	if err != nil {
		return 0, 0, nil, false // not digits, or too many: not a token add made
	}
	r.mu.Lock()
	raw, ok = r.m[id]
	r.mu.Unlock()
	if !ok {
		return 0, 0, nil, false
	}
	start, end = i, k+1
	const notifSuffix = `:true}`
	if i > 0 && frame[i-1] == '{' && bytes.HasPrefix(frame[end:], []byte(notifSuffix)) {
		start, end = i-1, end+len(notifSuffix)
	}
	return start, end, raw, true
}
