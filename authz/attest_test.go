package authz

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/sigilcore/sigil-hub/internal/vectors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// attTestVectors is the part of vectors/attestation/decision-records.json
// that applies to the intent attestation.
type attTestVectors struct {
	PublicJwk         json.RawMessage `json:"publicJwk"`
	RotationPublicJwk json.RawMessage `json:"rotationPublicJwk"`
	Context           struct {
		TxCommit           string `json:"txCommit"`
		ExpectedPolicyHash string `json:"expectedPolicyHash"`
		NowUnixSeconds     int64  `json:"nowUnixSeconds"`
	} `json:"context"`
	Tokens map[string]string `json:"tokens"`
}

func attTestLoad(t *testing.T) attTestVectors {
	t.Helper()
	path := filepath.Join(vectors.Dir(t), "attestation", "decision-records.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("attestation vectors not found at %s (shared vectors are not in the repo)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	var v attTestVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func attTestJWKS(t *testing.T, jwks ...json.RawMessage) map[string]ed25519.PublicKey {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"keys": jwks})
	keys, err := attParseJWKS(doc)
	if err != nil {
		t.Fatalf("attParseJWKS: %v", err)
	}
	return keys
}

// attTestVerify runs parse, key selection and checks like attVerifier does,
// against a fixed key set.
func attTestVerify(token string, keys map[string]ed25519.PublicKey, now time.Time, txCommit, pin, bodyHash string) *attError {
	tok, e := attParse(token)
	if e != nil {
		return e
	}
	key, ok := keys[tok.kid]
	if !ok {
		return attFail(attReasonKeyUnavailable, "unknown kid")
	}
	return attCheck(tok, key, now, txCommit, pin, bodyHash)
}

func TestAttestationVectors(t *testing.T) {
	v := attTestLoad(t)
	keys := attTestJWKS(t, v.PublicJwk)
	rotationOnly := attTestJWKS(t, v.RotationPublicJwk)
	now := time.Unix(v.Context.NowUnixSeconds, 0)
	tx, pin := v.Context.TxCommit, v.Context.ExpectedPolicyHash
	att := v.Tokens["attestation"]
	seg := strings.Split(att, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	reheader := func(h string) string { return b64([]byte(h)) + "." + seg[1] + "." + seg[2] }
	tests := []struct {
		name     string
		token    string
		keys     map[string]ed25519.PublicKey
		now      time.Time
		tx, pin  string
		bodyHash string
		reason   string // "" = verifies
	}{
		{name: "valid attestation", token: att},
		{name: "valid with body policy hash", token: att, bodyHash: pin},
		{name: "valid without pin", token: att, pin: "-"},
		{name: "valid at edge of skew", token: att, now: now.Add(89 * time.Second)},
		{name: "expired", token: att, now: now.Add(91 * time.Second), reason: attReasonExpired},
		{name: "not yet valid", token: att, now: now.Add(-31 * time.Second), reason: attReasonNotYetValid},
		{name: "mixed attestation (other intent)", token: v.Tokens["mixed_attestation"], reason: attReasonIntent},
		{name: "other txCommit", token: att, tx: strings.Repeat("2", 64), reason: attReasonIntent},
		{name: "pin mismatch", token: att, pin: strings.Repeat("b", 64), reason: attReasonPolicy},
		{name: "body policy hash mismatch", token: att, bodyHash: strings.Repeat("c", 64), reason: attReasonPolicy},
		{name: "unknown kid", token: att, keys: rotationOnly, reason: attReasonKeyUnavailable},
		{name: "tampered signature", token: att[:len(att)-1] + "A", reason: attReasonSignature},
		{name: "decision token in attestation slot", token: v.Tokens["allowed"], reason: attReasonMalformed},
		{name: "four segments", token: att + "." + seg[2], reason: attReasonMalformed},
		{name: "two segments", token: seg[0] + "." + seg[1], reason: attReasonMalformed},
		{name: "base64url padding", token: seg[0] + "=." + seg[1] + "." + seg[2], reason: attReasonMalformed},
		{name: "non-base64url header character", token: "*" + att[1:], reason: attReasonMalformed},
		{name: "standard base64 character", token: seg[0] + "." + seg[1] + "+." + seg[2], reason: attReasonMalformed},
		{name: "line break in segment", token: seg[0][:4] + "\n" + seg[0][4:] + "." + seg[1] + "." + seg[2], reason: attReasonMalformed},
		{name: "oversized compact", token: seg[0] + "." + b64([]byte(strings.Repeat("x", 7000))) + "." + seg[2], reason: attReasonMalformed},
		{name: "extra header parameter", token: reheader(`{"alg":"EdDSA","kid":"decision-fixture-key-1","jku":"https://evil.example"}`), reason: attReasonMalformed},
		{name: "duplicate header key", token: reheader(`{"alg":"EdDSA","alg":"EdDSA","kid":"decision-fixture-key-1"}`), reason: attReasonMalformed},
		{name: "alg none", token: reheader(`{"alg":"none","kid":"decision-fixture-key-1"}`), reason: attReasonMalformed},
		{name: "alg HS256", token: reheader(`{"alg":"HS256","kid":"decision-fixture-key-1"}`), reason: attReasonMalformed},
		{name: "empty", token: "", reason: attReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, n, x, p := keys, now, tx, pin
			if tt.keys != nil {
				k = tt.keys
			}
			if !tt.now.IsZero() {
				n = tt.now
			}
			if tt.tx != "" {
				x = tt.tx
			}
			if tt.pin == "-" {
				p = ""
			} else if tt.pin != "" {
				p = tt.pin
			}
			e := attTestVerify(tt.token, k, n, x, p, tt.bodyHash)
			got := ""
			if e != nil {
				got = e.Reason
			}
			if got != tt.reason {
				t.Errorf("verify = %v, want reason %q", e, tt.reason)
			}
		})
	}
}

// TestAttestationClaims covers the claim rules with tokens signed by a test
// key (the vector key's private half is not published).
func TestAttestationClaims(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]ed25519.PublicKey{"k1": pub}
	tx := strings.Repeat("1", 64)
	sum := sha256.Sum256([]byte(tx))
	now := time.Unix(2_000_000_000, 0)
	base := func() map[string]any {
		return map[string]any{
			"iss": "sigil-core", "aud": "sigil-sign", "iat": now.Unix(), "exp": now.Unix() + 60,
			"kid": "k1", "decision": "ALLOWED", "intentHash": hex.EncodeToString(sum[:]), "policyHash": signtest.DefaultPolicyHash,
		}
	}
	hdr := `{"alg":"EdDSA","kid":"k1"}`
	tests := []struct {
		name   string
		header string
		edit   func(m map[string]any)
		raw    string // claims JSON used verbatim instead of base
		reason string
	}{
		{name: "valid", edit: func(map[string]any) {}},
		{name: "typ JWT accepted", header: `{"alg":"EdDSA","kid":"k1","typ":"JWT"}`, edit: func(map[string]any) {}},
		{name: "typ sof-decision rejected", header: `{"alg":"EdDSA","kid":"k1","typ":"sof-decision+jws"}`, edit: func(map[string]any) {}, reason: attReasonMalformed},
		{name: "aud array", edit: func(m map[string]any) { m["aud"] = []string{"other", "sigil-sign"} }},
		{name: "aud wrong", edit: func(m map[string]any) { m["aud"] = "https://sign.sigilcore.com" }, reason: attReasonAudience},
		{name: "aud array without", edit: func(m map[string]any) { m["aud"] = []string{"other"} }, reason: attReasonAudience},
		{name: "aud missing", edit: func(m map[string]any) { delete(m, "aud") }, reason: attReasonAudience},
		{name: "iss wrong", edit: func(m map[string]any) { m["iss"] = "https://sign.sigilcore.com" }, reason: attReasonIssuer},
		{name: "lifetime 61 s", edit: func(m map[string]any) { m["exp"] = now.Unix() + 61 }, reason: attReasonLifetime},
		{name: "exp before iat", edit: func(m map[string]any) { m["exp"] = now.Unix() - 1 }, reason: attReasonLifetime},
		{name: "iat fractional", raw: `{"iss":"sigil-core","aud":"sigil-sign","iat":2000000000.5,"exp":2000000060,"kid":"k1","decision":"ALLOWED"}`, reason: attReasonMalformed},
		{name: "exp string", edit: func(m map[string]any) { m["exp"] = "2000000060" }, reason: attReasonMalformed},
		{name: "kid claim mismatch", edit: func(m map[string]any) { m["kid"] = "k2" }, reason: attReasonMalformed},
		{name: "kid claim missing", edit: func(m map[string]any) { delete(m, "kid") }, reason: attReasonMalformed},
		{name: "decision DENIED", edit: func(m map[string]any) { m["decision"] = "DENIED" }, reason: attReasonLiteral},
		{name: "decision APPROVED", edit: func(m map[string]any) { m["decision"] = "APPROVED" }, reason: attReasonLiteral},
		{name: "duplicate claim", raw: `{"iss":"sigil-core","iss":"sigil-core"}`, reason: attReasonMalformed},
		{name: "claims not an object", raw: `[1]`, reason: attReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr
			if tt.header != "" {
				h = tt.header
			}
			claims := []byte(tt.raw)
			if tt.raw == "" {
				m := base()
				tt.edit(m)
				claims, _ = json.Marshal(m)
			}
			tok := signtest.SignRaw(priv, []byte(h), claims)
			e := attTestVerify(tok, keys, now, tx, signtest.DefaultPolicyHash, "")
			got := ""
			if e != nil {
				got = e.Reason
			}
			if got != tt.reason {
				t.Errorf("verify = %v, want reason %q", e, tt.reason)
			}
		})
	}
}

func TestAttestationJWKSParse(t *testing.T) {
	x := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	key := func(kid string) string {
		return `{"kty":"OKP","crv":"Ed25519","kid":"` + kid + `","x":"` + x + `"}`
	}
	many := make([]string, 17)
	for i := range many {
		many[i] = key(string(rune('a' + i)))
	}
	tests := []struct {
		name string
		doc  string
		n    int // keys wanted; 0 = error
	}{
		{"one key", `{"keys":[` + key("a") + `]}`, 1},
		{"rsa key skipped", `{"keys":[{"kty":"RSA","kid":"r","n":"x","e":"AQAB"},` + key("a") + `]}`, 1},
		{"full members", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `","use":"sig","alg":"EdDSA","key_ops":["verify"]}]}`, 1},
		{"no keys", `{"keys":[]}`, 0},
		{"keys missing", `{}`, 0},
		{"17 keys", `{"keys":[` + strings.Join(many, ",") + `]}`, 0},
		{"duplicate kid", `{"keys":[` + key("a") + `,` + key("a") + `]}`, 0},
		{"duplicate member", `{"keys":[` + key("a") + `],"keys":[]}`, 0},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`, 0},
		{"padded x", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `="}]}`, 0},
		{"alg RS256", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `","alg":"RS256"}]}`, 0},
		{"only rsa", `{"keys":[{"kty":"RSA","kid":"r"}]}`, 0},
		{"not json", `nope`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := attParseJWKS([]byte(tt.doc))
			if (err == nil) != (tt.n > 0) || len(keys) != tt.n {
				t.Errorf("attParseJWKS = %d keys, %v; want %d", len(keys), err, tt.n)
			}
		})
	}
}

// TestAttestationModes runs approvals through a Sign against the double for
// each verify mode.
func TestAttestationModes(t *testing.T) {
	tests := []struct {
		name    string
		attest  bool
		verify  string
		pin     string
		bad     func(srv *signtest.Server, r signtest.Request) signtest.Reply // nil = the double's own reply
		verdict Verdict
		warned  bool
	}{
		{name: "enforce valid", attest: true, verify: VerifyEnforce, verdict: Approved},
		{name: "enforce valid with pin", attest: true, verify: VerifyEnforce, pin: signtest.DefaultPolicyHash, verdict: Approved},
		{name: "enforce pin mismatch", attest: true, verify: VerifyEnforce, pin: strings.Repeat("b", 64), verdict: Denied},
		{name: "enforce missing", verify: VerifyEnforce, verdict: Denied},
		{name: "warn missing", verify: VerifyWarn, verdict: Approved, warned: true},
		{name: "off missing", verify: VerifyOff, verdict: Approved},
		{name: "enforce wrong intent", attest: true, verify: VerifyEnforce, verdict: Denied, bad: func(srv *signtest.Server, r signtest.Request) signtest.Reply {
			return srv.ApproveWith(srv.SignToken(nil, srv.AttestationClaims(strings.Repeat("9", 64))))
		}},
		{name: "warn wrong intent", attest: true, verify: VerifyWarn, verdict: Approved, warned: true, bad: func(srv *signtest.Server, r signtest.Request) signtest.Reply {
			return srv.ApproveWith(srv.SignToken(nil, srv.AttestationClaims(strings.Repeat("9", 64))))
		}},
		{name: "enforce expired", attest: true, verify: VerifyEnforce, verdict: Denied, bad: func(srv *signtest.Server, r signtest.Request) signtest.Reply {
			c := srv.AttestationClaims(r.TxCommit)
			c["iat"], c["exp"] = c["iat"].(int64)-600, c["exp"].(int64)-600
			return srv.ApproveWith(srv.SignToken(nil, c))
		}},
		{name: "off garbage token", verify: VerifyOff, verdict: Approved, bad: func(srv *signtest.Server, r signtest.Request) signtest.Reply {
			return srv.ApproveWith("not.a.jws")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *signtest.Server
			srv = signtest.New(t, signtest.Options{Attest: tt.attest, Decide: func(r signtest.Request) signtest.Reply {
				if tt.bad != nil {
					return tt.bad(srv, r)
				}
				return signtest.Approve()
			}})
			env := signTestNew(t, srv.URL, SignOptions{Verify: tt.verify, PolicyHash: tt.pin})
			d, err := env.sign.Authorize(context.Background(), signTestReq())
			if err != nil || d.Verdict != tt.verdict {
				t.Fatalf("Authorize = %+v, %v; want %v", d, err, tt.verdict)
			}
			if d.Verdict == Denied && d.ErrorCode != "SIGIL_DECISION_VERIFICATION_FAILED" {
				t.Errorf("code = %q, want SIGIL_DECISION_VERIFICATION_FAILED", d.ErrorCode)
			}
			if tt.attest && d.Verdict == Approved && (d.Attestation == "") == !tt.warned {
				t.Errorf("Attestation = %q: a verified one must travel with the call, a failed one must not", d.Attestation)
			}
			if tt.attest && d.Verdict == Approved && d.PolicyHash != signtest.DefaultPolicyHash {
				t.Errorf("PolicyHash = %q, want the body's", d.PolicyHash)
			}
			if got := strings.Contains(env.log.String(), "attestation not verified"); got != tt.warned {
				t.Errorf("warning logged = %v, want %v; log:\n%s", got, tt.warned, env.log.String())
			}
		})
	}
}

func TestAttestationJWKSCache(t *testing.T) {
	srv := signtest.New(t, signtest.Options{Attest: true})
	env, clk := holdTestSign(t, srv.URL, SignOptions{Verify: VerifyEnforce})
	// The double signs with real time; keep the manual clock near it.
	clk.now = time.Now()
	authorize := func() {
		t.Helper()
		d, err := env.sign.Authorize(context.Background(), signTestReq())
		if err != nil || d.Verdict != Approved {
			t.Fatalf("Authorize = %+v, %v; want approval", d, err)
		}
	}
	authorize()
	authorize()
	if n := srv.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS fetches = %d, want 1 (cached)", n)
	}
	// Rotation: an unknown kid triggers one refetch.
	srv.RotateKey(t, "signtest-2", true)
	authorize()
	if n := srv.JWKSFetches(); n != 2 {
		t.Fatalf("JWKS fetches after rotation = %d, want 2", n)
	}
	// After the 300 s TTL the set is fetched again.
	clk.mu.Lock()
	clk.now = clk.now.Add(301 * time.Second)
	clk.mu.Unlock()
	if _, err := env.sign.att.key(context.Background(), "signtest-2"); err != nil {
		t.Fatal(err)
	}
	if n := srv.JWKSFetches(); n != 3 {
		t.Fatalf("JWKS fetches after TTL = %d, want 3", n)
	}
	// A kid the JWKS does not have: one refetch per verification, then deny.
	_, err := env.sign.att.key(context.Background(), "nobody")
	var ae *attError
	if !errors.As(err, &ae) || ae.Reason != attReasonKeyUnavailable {
		t.Fatalf("key(nobody) = %v, want key_unavailable", err)
	}
	if n := srv.JWKSFetches(); n != 4 {
		t.Errorf("JWKS fetches after unknown kid = %d, want 4", n)
	}
}
