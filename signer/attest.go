package signer

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// Intent attestations and the JWKS (docs/protocol.md#attestations-and-the-jwks).

// attHeader is the protected header: exactly {"alg":"EdDSA","kid":…}
// (the Rust verifier demands exactly these two members).
type attHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// attClaims are the claims of an intent attestation, in wire order.
type attClaims struct {
	Iss        string   `json:"iss"`
	Aud        []string `json:"aud"`
	Iat        int64    `json:"iat"`
	Exp        int64    `json:"exp"`
	Kid        string   `json:"kid"`
	IntentHash string   `json:"intentHash"`
	PolicyHash string   `json:"policyHash"`
	Decision   string   `json:"decision"`
	AgentID    string   `json:"agentId"`
	Framework  string   `json:"framework"`
	Provenance string   `json:"provenance"`
	ChainID    *int64   `json:"chainId,omitempty"`
}

// attest signs an intent attestation for an approval of q under the policy
// with hash policyHash.
func (s *Server) attest(q authorizeReq, policyHash string) string {
	iat := s.o.Now().Unix()
	sum := sha256.Sum256([]byte(q.txCommit))
	c := attClaims{
		Iss: s.o.Issuer, Aud: []string{Audience}, Iat: iat, Exp: iat + int64(AttestationLifetime.Seconds()),
		Kid: s.o.Kid, IntentHash: hex.EncodeToString(sum[:]), PolicyHash: policyHash,
		Decision: "ALLOWED", AgentID: q.agentID, Framework: q.framework, Provenance: "agent", ChainID: q.chainID,
	}
	hb, _ := json.Marshal(attHeader{Alg: "EdDSA", Kid: s.o.Kid})
	cb, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	return in + "." + enc.EncodeToString(ed25519.Sign(s.o.Key, []byte(in)))
}

// jwk is one public key of the JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	X   string `json:"x"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	k := jwk{Kty: "OKP", Crv: "Ed25519", Kid: s.o.Kid, X: base64.RawURLEncoding.EncodeToString(s.pub), Use: "sig", Alg: "EdDSA"}
	w.Header().Set("Cache-Control", "public, max-age=300")
	b, _ := json.Marshal(map[string][]jwk{"keys": {k}})
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":…}): a stable kid.
// Safe for concurrent use.
func Thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
