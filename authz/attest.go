package authz

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Intent attestation verification
// (docs/protocol.md#attestations-and-the-jwks).
//
// An approval may carry intent_attestation: a compact Ed25519 JWS signed by
// Sign over claims that bind the decision to the txCommit we sent
// (intentHash = sha256hex(txCommit)), with keys from the Sign origin's
// /.well-known/jwks.json.

const (
	attMaxToken    = 8 << 10 // token size cap
	attMaxLifetime = 60 * time.Second
	attSkew        = 30 * time.Second
	attJWKSTTL     = 300 * time.Second
	attMaxKeys     = 16
	attIssuer      = "sigil-core"
	attAudience    = "sigil-sign"
)

// Verification failure reasons, named as in the reference vectors
// (vectors/attestation/decision-records.json) where they overlap.
const (
	attReasonMalformed      = "malformed"
	attReasonKeyUnavailable = "key_unavailable"
	attReasonSignature      = "signature"
	attReasonIssuer         = "issuer"
	attReasonAudience       = "audience"
	attReasonLifetime       = "lifetime"
	attReasonExpired        = "expired"
	attReasonNotYetValid    = "not_yet_valid"
	attReasonLiteral        = "literal_mismatch"
	attReasonIntent         = "intent_binding"
	attReasonPolicy         = "policy_binding"
	attReasonMissing        = "attestation_missing"
)

// attError is a failed verification: Reason is one of the attReason*
// constants, Detail says what exactly failed (no secrets; safe to log).
type attError struct {
	Reason string
	Detail string
}

func (e *attError) Error() string { return "attestation " + e.Reason + ": " + e.Detail }

func attFail(reason, format string, args ...any) *attError {
	return &attError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// attToken is a syntactically valid compact JWS.
type attToken struct {
	kid          string
	signingInput []byte
	sig          []byte
	claims       map[string]json.RawMessage
}

// attB64 decodes one canonical unpadded base64url segment: padding, line
// breaks and non-zero trailing bits are all rejected.
func attB64(seg string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, err
	}
	if base64.RawURLEncoding.EncodeToString(b) != seg {
		return nil, errors.New("non-canonical base64url")
	}
	return b, nil
}

// attParse checks the token's framing and protected header.
func attParse(token string) (attToken, *attError) {
	if len(token) > attMaxToken {
		return attToken{}, attFail(attReasonMalformed, "token is %d bytes, over %d", len(token), attMaxToken)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return attToken{}, attFail(attReasonMalformed, "token has %d segments, want 3", len(parts))
	}
	var dec [3][]byte
	for i, p := range parts {
		b, err := attB64(p)
		if err != nil || len(b) == 0 {
			return attToken{}, attFail(attReasonMalformed, "segment %d is not canonical unpadded base64url", i+1)
		}
		dec[i] = b
	}
	hdr, err := strictjson.Object(dec[0], 2)
	if err != nil {
		return attToken{}, attFail(attReasonMalformed, "header: %v", err)
	}
	for name := range hdr {
		if name != "alg" && name != "kid" && name != "typ" {
			return attToken{}, attFail(attReasonMalformed, "header has unexpected member %.40q", name)
		}
	}
	hm := respMembers(hdr)
	alg, _, err := hm.str("alg", "")
	if err != nil || alg != "EdDSA" {
		return attToken{}, attFail(attReasonMalformed, "header alg must be EdDSA")
	}
	kid, _, err := hm.str("kid", "")
	if err != nil || kid == "" {
		return attToken{}, attFail(attReasonMalformed, "header kid missing or not a string")
	}
	if typ, ok, err := hm.str("typ", ""); err != nil || (ok && typ != "JWT") {
		return attToken{}, attFail(attReasonMalformed, "header typ must be JWT when present")
	}
	claims, err := strictjson.Object(dec[1], respMaxDepth)
	if err != nil {
		return attToken{}, attFail(attReasonMalformed, "claims: %v", err)
	}
	if len(dec[2]) != ed25519.SignatureSize {
		return attToken{}, attFail(attReasonMalformed, "signature is %d bytes, want %d", len(dec[2]), ed25519.SignatureSize)
	}
	return attToken{
		kid:          kid,
		signingInput: []byte(parts[0] + "." + parts[1]),
		sig:          dec[2],
		claims:       claims,
	}, nil
}

func attInt(m respMembers, name string) (int64, *attError) {
	raw, ok := m[name]
	if !ok || !plainInt(raw, 18) {
		return 0, attFail(attReasonMalformed, "claim %s missing or not an integer", name)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, attFail(attReasonMalformed, "claim %s: %v", name, err)
	}
	return n, nil
}

// attCheck verifies tok's signature with key and its claims against the
// txCommit that was sent, the operator pin (may be "") and the policy hash
// the response body reported (may be ""), at time now.
func attCheck(tok attToken, key ed25519.PublicKey, now time.Time, txCommit, pin, bodyPolicyHash string) *attError {
	if !ed25519.Verify(key, tok.signingInput, tok.sig) {
		return attFail(attReasonSignature, "Ed25519 signature does not verify with key %.40q", tok.kid)
	}
	m := respMembers(tok.claims)
	if iss, _, err := m.str("iss", ""); err != nil || iss != attIssuer {
		return attFail(attReasonIssuer, "iss is not %q", attIssuer)
	}
	if !attHasAudience(m["aud"]) {
		return attFail(attReasonAudience, "aud does not contain %q", attAudience)
	}
	iat, e := attInt(m, "iat")
	if e != nil {
		return e
	}
	exp, e := attInt(m, "exp")
	if e != nil {
		return e
	}
	if exp <= iat || time.Duration(exp-iat)*time.Second > attMaxLifetime {
		return attFail(attReasonLifetime, "lifetime %ds is not within 1..%ds", exp-iat, int(attMaxLifetime/time.Second))
	}
	if now.Before(time.Unix(iat, 0).Add(-attSkew)) {
		return attFail(attReasonNotYetValid, "issued at %d, in the future", iat)
	}
	if now.After(time.Unix(exp, 0).Add(attSkew)) {
		return attFail(attReasonExpired, "expired at %d", exp)
	}
	if kid, _, err := m.str("kid", ""); err != nil || kid != tok.kid {
		return attFail(attReasonMalformed, "claim kid does not equal header kid")
	}
	if d, _, err := m.str("decision", ""); err != nil || d != "ALLOWED" {
		return attFail(attReasonLiteral, "decision claim is not ALLOWED")
	}
	sum := sha256.Sum256([]byte(txCommit))
	if ih, _, err := m.str("intentHash", ""); err != nil || ih != hex.EncodeToString(sum[:]) {
		return attFail(attReasonIntent, "intentHash is not sha256(txCommit) of the intent sent")
	}
	ph, _, err := m.str("policyHash", "")
	if err != nil {
		return attFail(attReasonMalformed, "claim policyHash is not a string")
	}
	if pin != "" && ph != pin {
		return attFail(attReasonPolicy, "policyHash %.64q does not equal the pinned policy hash", ph)
	}
	if bodyPolicyHash != "" && ph != bodyPolicyHash {
		return attFail(attReasonPolicy, "policyHash %.64q does not equal the response's policy_hash", ph)
	}
	return nil
}

func attHasAudience(raw json.RawMessage) bool {
	isAudience := func(r json.RawMessage) bool {
		s, ok := strictjson.DecodeString(r)
		return ok && s == attAudience
	}
	if isAudience(raw) {
		return true
	}
	var list []json.RawMessage
	return len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, &list) == nil && slices.ContainsFunc(list, isAudience)
}

// attParseJWKS parses a JWKS document: 1..16 Ed25519 keys ("kty":"OKP",
// "crv":"Ed25519") with unique kids. Keys of other types are skipped; a
// malformed Ed25519 key rejects the whole set.
func attParseJWKS(data []byte) (map[string]ed25519.PublicKey, error) {
	m, err := strictjson.Object(data, 8)
	if err != nil {
		return nil, fmt.Errorf("jwks is not a strict JSON object: %v", err)
	}
	var list []json.RawMessage
	if raw := m["keys"]; len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return nil, errors.New(`jwks has no "keys" array`)
	}
	if len(list) == 0 || len(list) > attMaxKeys {
		return nil, fmt.Errorf("jwks has %d keys, want 1..%d", len(list), attMaxKeys)
	}
	keys := map[string]ed25519.PublicKey{}
	for i, raw := range list {
		km, err := strictjson.Object(raw, 4)
		if err != nil {
			return nil, fmt.Errorf("jwks key %d: %v", i, err)
		}
		k := respMembers(km)
		kty, _, _ := k.str("kty", "")
		crv, _, _ := k.str("crv", "")
		if kty != "OKP" || crv != "Ed25519" {
			continue
		}
		kid, _, err := k.str("kid", "")
		if err != nil || kid == "" {
			return nil, fmt.Errorf("jwks key %d has no kid", i)
		}
		if _, dup := keys[kid]; dup {
			return nil, fmt.Errorf("jwks has duplicate kid %.40q", kid)
		}
		if alg, ok, err := k.str("alg", ""); err != nil || (ok && alg != "EdDSA") {
			return nil, fmt.Errorf("jwks key %.40q: alg is not EdDSA", kid)
		}
		if use, ok, err := k.str("use", ""); err != nil || (ok && use != "sig") {
			return nil, fmt.Errorf("jwks key %.40q: use is not sig", kid)
		}
		x, _, err := k.str("x", "")
		if err != nil {
			return nil, fmt.Errorf("jwks key %.40q: %v", kid, err)
		}
		pub, err := attB64(x)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("jwks key %.40q: x is not a 32-byte base64url key", kid)
		}
		keys[kid] = ed25519.PublicKey(pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks has no Ed25519 key")
	}
	return keys, nil
}

// attVerifier verifies intent attestations against a Sign origin's JWKS.
// It is safe for concurrent use.
type attVerifier struct {
	jwksURL     string
	client      *http.Client
	timeout     time.Duration // per JWKS fetch (also bounded by ctx)
	bodyTimeout time.Duration
	now         func() time.Time

	// mu guards keys and fetched and is held across a fetch, so that
	// concurrent verifications share one fetch instead of N.
	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

// verify checks token for the intent whose txCommit was sent. It returns
// ctx.Err() when ctx ended, an *attError for a failed verification.
func (v *attVerifier) verify(ctx context.Context, token, txCommit, pin, bodyPolicyHash string) error {
	if token == "" {
		return attFail(attReasonMissing, "approval carries no intent attestation")
	}
	tok, e := attParse(token)
	if e != nil {
		return e
	}
	key, err := v.key(ctx, tok.kid)
	if err != nil {
		return err
	}
	if e := attCheck(tok, key, v.now(), txCommit, pin, bodyPolicyHash); e != nil {
		return e
	}
	return nil
}

// key returns the public key kid from the cached JWKS, fetching it when the
// cache is empty or older than attJWKSTTL, and refetching once when kid is
// unknown.
func (v *attVerifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	if v.keys != nil && now.Sub(v.fetched) < attJWKSTTL {
		if k, ok := v.keys[kid]; ok {
			return k, nil
		}
	}
	keys, err := v.fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, attFail(attReasonKeyUnavailable, "%v", err)
	}
	v.keys, v.fetched = keys, now
	k, ok := keys[kid]
	if !ok {
		return nil, attFail(attReasonKeyUnavailable, "kid %.40q is not in the JWKS", kid)
	}
	return k, nil
}

func (v *attVerifier) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	rctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %v", v.jwksURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req) // no Authorization: the JWKS is public
	if err != nil {
		return nil, fmt.Errorf("fetching jwks %s: %v", v.jwksURL, signErrText(err))
	}
	defer resp.Body.Close()
	body, err := respReadBody(ctx, resp, cancel, v.bodyTimeout)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %v", v.jwksURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: HTTP %d", v.jwksURL, resp.StatusCode)
	}
	keys, err := attParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %v", v.jwksURL, err)
	}
	return keys, nil
}
