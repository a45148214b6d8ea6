package policy

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
)

// Options configures Parse. The zero value parses an unsigned or signed
// policy without verifying the signature (a malformed signature block is
// still rejected). Parse reads Options once and keeps no reference to it.
type Options struct {
	// PublicKey is the operator's raw Ed25519 public key. If nil, the
	// signature block is framing-checked but not verified. If set, a signed
	// policy loads only when its signature verifies; an unsigned policy
	// still loads unless RequireSignature is true.
	PublicKey ed25519.PublicKey
	// RequireSignature rejects a policy without a "## signature" block.
	// With a nil PublicKey it only demands a well-formed block.
	RequireSignature bool
}

// ParseError describes why a policy did not load. Line is 1-based (0 when
// the error concerns the whole file); Section and Key name the place when
// known; Code is a stable machine-readable class (WARRANT_* for envelope
// framing, POLICY_* otherwise). It is a plain value, safe to share.
type ParseError struct {
	Line    int
	Section string
	Key     string
	Code    string
	Msg     string
}

// Error implements error.
func (e *ParseError) Error() string {
	s := "warranty.md"
	if e.Line > 0 {
		s += " line " + strconv.Itoa(e.Line)
	}
	if e.Section != "" {
		s += ": ## " + e.Section
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// Policy is a parsed, validated warranty.md. It is immutable after Parse and
// safe for concurrent use; Evaluate may be called from many goroutines.
type Policy struct {
	version   string
	signed    bool
	custom    *customRules
	tools     *toolRules
	mcp       *mcpRules
	limits    *execLimits
	canonJSON []byte
	hash      string
}

// Parse parses and validates a warranty.md. Errors are *ParseError values
// naming the line and section/key. A section the embedded engine does not
// implement fails with "section ## X is not supported by the embedded
// engine". Parse is safe for concurrent use.
func Parse(src []byte, o Options) (*Policy, error) {
	if len(src) > maxPolicyBytes {
		return nil, &ParseError{Code: codeStrictSize, Msg: fmt.Sprintf("policy is larger than %d bytes", maxPolicyBytes)}
	}
	if bytes.IndexByte(src, 0) >= 0 {
		return nil, &ParseError{Line: lineOf(string(src), bytes.IndexByte(src, 0)), Code: codeStrictNUL, Msg: "policy contains a NUL byte"}
	}
	env, err := splitEnvelope(src)
	if err != nil {
		return nil, err
	}
	text := string(src)
	if env.hasHeader {
		line := lineOf(text, env.headerOff)
		if env.signature == "" {
			return nil, &ParseError{Line: line, Section: "signature", Key: "sigil-sig", Code: codeStrictSignature, Msg: "signature block must contain only sigil-sig (none found)"}
		}
		c, err := strictCC1(src, 0)
		if err != nil {
			if pe, ok := err.(*ParseError); ok && pe.Line == 0 {
				pe.Line = line
			}
			return nil, err
		}
		if o.PublicKey != nil {
			if len(o.PublicKey) != ed25519.PublicKeySize {
				return nil, &ParseError{Section: "signature", Code: "POLICY_BAD_KEY", Msg: fmt.Sprintf("operator public key is %d bytes, want %d", len(o.PublicKey), ed25519.PublicKeySize)}
			}
			// The CC-1 preimage is every byte before the heading; the legacy
			// emitter signed it with trailing whitespace removed
			// (sigil-envelope-v1.json strictCc1 "legacy-emitter-ed25519").
			if !ed25519.Verify(o.PublicKey, c.unsigned, c.signature) && !ed25519.Verify(o.PublicKey, c.legacyUnsigned, c.signature) {
				return nil, &ParseError{Line: line, Section: "signature", Key: "sigil-sig", Code: "POLICY_BAD_SIGNATURE", Msg: "signature does not verify with the operator public key"}
			}
		}
		text = string(c.unsigned)
	} else if o.RequireSignature {
		return nil, &ParseError{Section: "signature", Code: "POLICY_UNSIGNED", Msg: "policy is unsigned but a signature is required"}
	}
	p, err := parseText(strings.TrimPrefix(text, "\ufeff"))
	if err != nil {
		return nil, err
	}
	p.signed = env.hasHeader
	return p, nil
}

// Hash returns the policyHash: lowercase hex SHA-256 of CanonicalJSON, the
// value Sigil Sign embeds in attestations
// (docs/protocol.md#the-embedded-policy).
func (p *Policy) Hash() string { return p.hash }

// CanonicalJSON returns the canonical policy JSON the hash is computed over.
// The returned slice is a copy.
func (p *Policy) CanonicalJSON() []byte { return bytes.Clone(p.canonJSON) }

// Version returns the policy's root version ("0.0.0" when absent).
func (p *Policy) Version() string { return p.version }

// Signed reports whether the policy carried a well-formed signature block
// (verified when Options.PublicKey was set).
func (p *Policy) Signed() bool { return p.signed }
