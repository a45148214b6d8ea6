package policy

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// maxPolicyBytes is the CC-1 hard size limit (sigil-envelope-v1.json
// "cc1-hard-size-limit"); it also bounds unsigned policies.
const maxPolicyBytes = 256 << 10

// Envelope error codes, as named by vectors/warrant-core/sigil-envelope-v1.json.
const (
	codeInvalidUTF8        = "WARRANT_ENVELOPE_INVALID_UTF8"
	codeDuplicateHeader    = "WARRANT_ENVELOPE_DUPLICATE_HEADER"
	codeTrailingContent    = "WARRANT_ENVELOPE_TRAILING_CONTENT"
	codeDuplicateSignature = "WARRANT_ENVELOPE_DUPLICATE_SIGNATURE"
	codeEmptyPolicy        = "WARRANT_ENVELOPE_EMPTY_POLICY"
	codeStrictBOM          = "WARRANT_ENVELOPE_STRICT_BOM"
	codeStrictCR           = "WARRANT_ENVELOPE_STRICT_CR"
	codeStrictNUL          = "WARRANT_ENVELOPE_STRICT_NUL"
	codeStrictHeader       = "WARRANT_ENVELOPE_STRICT_HEADER"
	codeStrictSignature    = "WARRANT_ENVELOPE_STRICT_SIGNATURE"
	codeStrictSize         = "WARRANT_ENVELOPE_STRICT_SIZE"
	codeUnterminated       = "WARRANT_UNTERMINATED_COMMENT"
)

// maskHTMLComments replaces every closed <!-- ... --> with spaces, keeping
// newlines so that byte offsets and line numbers survive. An opener without
// a closer is an error; a stray "-->" is literal text (signature-blocks.json
// "signature-block-with-literal-comment-closer").
func maskHTMLComments(s string) (string, error) {
	if !strings.Contains(s, "<!--") {
		return s, nil
	}
	b := []byte(s)
	i := 0
	for {
		j := strings.Index(s[i:], "<!--")
		if j < 0 {
			return string(b), nil
		}
		start := i + j
		k := strings.Index(s[start+4:], "-->")
		if k < 0 {
			return "", &ParseError{Line: lineOf(s, start), Code: codeUnterminated, Msg: "unterminated HTML comment"}
		}
		end := start + 4 + k + 3
		for p := start; p < end; p++ {
			if b[p] != '\n' {
				b[p] = ' '
			}
		}
		i = end
	}
}

// lineOf returns the 1-based line number of byte offset off in s.
func lineOf(s string, off int) int {
	return strings.Count(s[:min(off, len(s))], "\n") + 1
}

// trimASCIISpaceRight strips trailing ASCII whitespace only: the envelope
// keeps U+00A0, U+2028 and U+3000 ("trailing-unicode-whitespace").
func trimASCIISpaceRight(s string) string {
	return strings.TrimRight(s, " \t\r\n\f\v")
}

// envelope is the lenient, structural split of a policy into its unsigned
// payload and optional signature block (sigil-envelope-v1.json "table").
type envelope struct {
	payload   string // unsigned policy text, trailing ASCII whitespace removed
	hasHeader bool   // a "## signature" heading was found
	headerOff int    // byte offset of the heading when hasHeader
	signature string // the sigil-sig value, "" when the block carries none
}

// splitEnvelope locates the "## signature" block. It enforces the framing
// rules every consumer shares: valid UTF-8, at most one signature heading
// (outside HTML comments), nothing but one sigil-sig line and "#" comment
// lines after it, and a non-empty payload.
func splitEnvelope(raw []byte) (envelope, error) {
	if !utf8.Valid(raw) {
		return envelope{}, &ParseError{Code: codeInvalidUTF8, Msg: "policy is not valid UTF-8"}
	}
	s := string(raw)
	masked, err := maskHTMLComments(s)
	if err != nil {
		return envelope{}, err
	}
	var env envelope
	headers := findSignatureHeaders(masked)
	switch {
	case len(headers) == 0:
		env.payload = trimASCIISpaceRight(s)
	case len(headers) > 1:
		return envelope{}, &ParseError{Line: lineOf(s, headers[1][0]), Section: "signature", Code: codeDuplicateHeader, Msg: "more than one signature block"}
	default:
		env.hasHeader = true
		env.headerOff = headers[0][0]
		env.payload = trimASCIISpaceRight(s[:headers[0][0]])
		block := s[headers[0][1]:]
		first := lineOf(s, headers[0][1])
		for i, l := range strings.Split(block, "\n") {
			t, line := strings.TrimSpace(l), first+i
			switch {
			case t == "", strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "##"):
				// Blank, or an author's placeholder comment ("# operator
				// signature will be added later").
			case strings.HasPrefix(t, "sigil-sig:"):
				if env.signature != "" {
					return envelope{}, &ParseError{Line: line, Section: "signature", Code: codeDuplicateSignature, Msg: "more than one sigil-sig line"}
				}
				v := strings.TrimSpace(strings.TrimPrefix(t, "sigil-sig:"))
				if v == "" || strings.TrimLeft(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
					return envelope{}, &ParseError{Line: line, Section: "signature", Key: "sigil-sig", Code: codeStrictSignature, Msg: "signature is not base64url"}
				}
				env.signature = v
			default:
				return envelope{}, &ParseError{Line: line, Section: "signature", Code: codeTrailingContent, Msg: "signature block must be final and contain only sigil-sig"}
			}
		}
	}
	if strings.TrimSpace(env.payload) == "" || strings.Trim(env.payload, " \t\r\n\f\v\ufeff") == "" {
		return envelope{}, &ParseError{Line: 1, Code: codeEmptyPolicy, Msg: "policy is empty"}
	}
	return env, nil
}

// findSignatureHeaders returns [start, end) of every line that is a
// "## signature" heading (any case, trailing blanks allowed).
func findSignatureHeaders(masked string) [][2]int {
	var out [][2]int
	off := 0
	for l := range strings.Lines(masked) {
		end := off + len(strings.TrimSuffix(l, "\n"))
		line := strings.TrimRight(masked[off:end], " \t\r\f\v")
		if len(line) > 2 && line[0] == '#' && line[1] == '#' {
			rest := line[2:]
			name := strings.TrimLeft(rest, " \t")
			if len(name) < len(rest) && strings.EqualFold(name, "signature") {
				out = append(out, [2]int{off, end})
			}
		}
		off += len(l)
	}
	return out
}

// cc1 is the strict CC-1 split of a signed policy (sigil-envelope-v1.json
// "strictCc1").
type cc1 struct {
	unsigned       []byte // the policy before "## signature", ending in exactly one newline
	legacyUnsigned []byte // unsigned with trailing ASCII whitespace removed
	signature      []byte // the 64 decoded signature bytes
}

// strictCC1 applies the strict framing: at most maxBytes (0 means 256 KiB),
// no BOM, CR or NUL anywhere, exactly one literal "## signature\n" line at a
// line start, followed by exactly "sigil-sig: " and an 86-character canonical
// base64url Ed25519 signature, then only blank space.
func strictCC1(raw []byte, maxBytes int) (cc1, error) {
	if maxBytes <= 0 || maxBytes > maxPolicyBytes {
		maxBytes = maxPolicyBytes
	}
	fail := func(code, msg string) (cc1, error) {
		return cc1{}, &ParseError{Section: "signature", Code: code, Msg: msg}
	}
	if len(raw) > maxBytes {
		return fail(codeStrictSize, "signed policy is larger than the size limit")
	}
	if len(raw) == 0 {
		return fail(codeEmptyPolicy, "policy is empty")
	}
	if !utf8.Valid(raw) {
		return fail(codeInvalidUTF8, "policy is not valid UTF-8")
	}
	if bytes.Contains(raw, []byte("\ufeff")) {
		return fail(codeStrictBOM, "signed policy must not contain a byte order mark")
	}
	if bytes.IndexByte(raw, '\r') >= 0 {
		return fail(codeStrictCR, "signed policy must use LF line endings (no CR)")
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return fail(codeStrictNUL, "signed policy must not contain NUL bytes")
	}
	const header = "## signature\n"
	var starts []int
	off := 0
	for l := range bytes.Lines(raw) {
		if string(l) == header {
			starts = append(starts, off)
		}
		off += len(l)
	}
	if len(starts) != 1 {
		// A heading that is not the exact literal (e.g. "## Signature") or
		// is missing altogether is a header error, as is a duplicate.
		return fail(codeStrictHeader, `signed policy needs exactly one literal "## signature" line`)
	}
	h := starts[0]
	// The signed message is the policy with trailing whitespace collapsed
	// to exactly one final newline; the legacy emitter signed it without
	// that newline (strictCc1 "unsignedUtf8" / "legacyUnsignedUtf8").
	legacy := trimASCIISpaceRight(string(raw[:h]))
	out := cc1{unsigned: []byte(legacy + "\n"), legacyUnsigned: []byte(legacy)}
	if len(bytes.Trim(out.legacyUnsigned, " \t\n\f\v")) == 0 {
		return fail(codeEmptyPolicy, "policy is empty")
	}
	tail := raw[h+len(header):]
	const prefix = "sigil-sig: "
	if !bytes.HasPrefix(tail, []byte(prefix)) || len(tail) < len(prefix)+86 {
		return fail(codeStrictSignature, `signature block must be exactly "sigil-sig: " and an 86-character base64url Ed25519 signature (sign the policy, or remove the placeholder ## signature block)`)
	}
	sig := tail[len(prefix) : len(prefix)+86]
	rest := tail[len(prefix)+86:]
	if len(bytes.Trim(rest, " \t\n")) != 0 || (len(rest) > 0 && rest[0] != '\n') {
		return fail(codeStrictSignature, "signature block must be final and contain only one sigil-sig line")
	}
	dec, err := base64.RawURLEncoding.Strict().DecodeString(string(sig))
	if err != nil || len(dec) != 64 {
		return fail(codeStrictSignature, "sigil-sig is not a canonical base64url Ed25519 signature")
	}
	out.signature = dec
	return out, nil
}
