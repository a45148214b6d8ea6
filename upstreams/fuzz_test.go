package upstreams

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzRawFrame fuzzes the framing code of raw.go: compactLine, which makes
// params fit stdio's one-message-per-line framing, and
// rawParams.substitute (and appendSubstituted, the stdio writer's form of
// it), which splice the caller's exact bytes into the encoded frame.
// Decoding of upstream messages is mcp-go's, but for the stdio fast path
// (FuzzFastResponse). Checked: nothing panics; compactLine leaves
// bytes without line breaks untouched, turns valid JSON into an equal
// single-line value and leaves invalid input as is; a request or
// notification frame carrying a registered token becomes exactly the frame
// with the bytes in its place, and once released the token is no longer
// substituted; an arbitrary frame is returned unchanged unless its first
// token-like string is replaced by the registered bytes. Seed corpus:
// testdata/fuzz/FuzzRawFrame.
func FuzzRawFrame(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"sigil-raw-fz-1"}`), []byte(`{"name":"echo","arguments":{"s":"<b>&"}}`))
	f.Add([]byte(`{"method":"m","params":{"sigil-raw-fz-1":true}}`), []byte("{\n  \"a\" : [1, 2e10, \"x\\ny\"]\r\n}"))
	f.Add([]byte(`"sigil-raw-fz-01" "sigil-raw-fz-1"`), []byte("{\"a\":\n"))
	f.Fuzz(func(t *testing.T, frame, raw []byte) {
		c := compactLine(raw)
		switch {
		case !bytes.ContainsAny(raw, "\r\n"):
			if !bytes.Equal(c, raw) {
				t.Fatalf("compactLine changed a single-line value: %q → %q", raw, c)
			}
		case json.Valid(raw):
			if bytes.ContainsAny(c, "\r\n") || !fuzzSameJSON(raw, c) {
				t.Fatalf("compactLine(%q) = %q: not an equal single-line value", raw, c)
			}
		default:
			if !bytes.Equal(c, raw) {
				t.Fatalf("compactLine changed invalid JSON %q → %q", raw, c)
			}
		}

		r := newRawParams("fz")
		tok, release := r.add(c)
		key := string(tok[1 : len(tok)-1])
		const reqHead, notifHead = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":`, `{"jsonrpc":"2.0","method":"notifications/x","params":`
		for _, tt := range []struct{ frame, want string }{
			{reqHead + string(tok) + `}`, reqHead + string(c) + `}`},
			{notifHead + `{"` + key + `":true}}`, notifHead + string(c) + `}`},
		} {
			got := r.substitute([]byte(tt.frame))
			if string(got) != tt.want {
				t.Fatalf("substitute(%q) = %q, want %q", tt.frame, got, tt.want)
			}
			if json.Valid(raw) && !json.Valid(got) {
				t.Fatalf("valid params %q gave an invalid frame %q", raw, got)
			}
		}

		fuzzCheckArbitrary(t, r, frame, c)
		release()
		if got := r.substitute([]byte(reqHead + string(tok) + `}`)); string(got) != reqHead+string(tok)+`}` {
			t.Fatalf("released token still substituted: %q", got)
		}
		if got := r.substitute(frame); !bytes.Equal(got, frame) {
			t.Fatalf("with no token registered, substitute(%q) = %q", frame, got)
		}
	})
}

// fuzzCheckArbitrary: substitute returns frame itself, or frame with one
// token string (or a notification's {"token":true}) at the first occurrence
// of the token prefix replaced by c.
func fuzzCheckArbitrary(t *testing.T, r *rawParams, frame, c []byte) {
	t.Helper()
	out := r.substitute(frame)
	if app := r.appendSubstituted([]byte("prev\n"), frame); string(app) != "prev\n"+string(out) {
		t.Fatalf("appendSubstituted(%q) = %q, substitute gave %q", frame, app, out)
	}
	if bytes.Equal(out, frame) {
		return
	}
	i := bytes.Index(frame, r.prefix)
	if i < 0 {
		t.Fatalf("substitute changed a frame without a token: %q → %q", frame, out)
	}
	for _, s := range []int{i, i - 1} {
		if s < 0 || !bytes.HasPrefix(out, frame[:s]) || !bytes.HasPrefix(out[s:], c) {
			continue
		}
		e := len(frame) - (len(out) - s - len(c))
		if e < s || e > len(frame) || !bytes.Equal(out[s+len(c):], frame[e:]) {
			continue
		}
		if fuzzIsToken(string(frame[s:e]), string(r.prefix)) {
			return
		}
	}
	t.Fatalf("substitute(%q) = %q: not one token replaced by %q", frame, out, c)
}

// fuzzIsToken matches `"PREFIX<digits>"` and `{"PREFIX<digits>":true}`
// (prefix includes the opening quote).
func fuzzIsToken(s, prefix string) bool {
	if strings.HasPrefix(s, "{") {
		var ok bool
		if s, ok = strings.CutSuffix(s[1:], ":true}"); !ok {
			return false
		}
	}
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return false
	}
	digits, ok = strings.CutSuffix(digits, `"`)
	return ok && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// fuzzSameJSON reports whether a and b decode to the same value, numbers
// compared as literals.
func fuzzSameJSON(a, b []byte) bool {
	decode := func(p []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(p))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	va, errA := decode(a)
	vb, errB := decode(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}
