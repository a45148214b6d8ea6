package authz

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParseResponse checks the Sign response parser
// (docs/protocol.md#decision-literals-and-strict-bodies): it never
// panics; it never reports an approval unless the body is valid JSON whose
// "status" decodes to exactly APPROVED or ALLOWED and whose every member is
// in the approval set (listed here independently of respMemberAllowed);
// every accepted DENIED carries an error_code and every accepted PENDING a
// hold_id. The hold-lookup parser gets the same body and must return one of
// the four hold states or an error. Seed corpus:
// testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"status":"APPROVED","policy_hash":"p","task_id":"t","intent_attestation":"a.b.c","decision_record":"d"}`,
		`{"status":"DENIED","error_code":"SIGIL_POLICY_VIOLATION","message":"no","next_steps":"ask"}`,
		`{"status":"PENDING","hold_id":"h1","intent_attestation":null}`,
		`{"status":"APPROVED","approved":true}`,
		`{"status":"APPROVED","status":"DENIED"}`,
		`{"status":"APPROVED ","policyHash":"p"}`,
	} {
		f.Add([]byte(s))
	}
	// docs/protocol.md#decision-literals-and-strict-bodies: an approval may
	// carry only status, policy_hash, policyHash, task_id, message,
	// intent_attestation, intentAttestation, decision_record; any other
	// member denies.
	approvalMembers := map[string]bool{
		"status": true, "policy_hash": true, "policyHash": true, "task_id": true, "message": true,
		"intent_attestation": true, "intentAttestation": true, "decision_record": true,
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := respParse(body)
		if st, herr := respParseHold(body); herr == nil {
			switch st {
			case HoldPending, HoldApproved, HoldDenied, HoldExpired:
			default:
				t.Fatalf("respParseHold(%q) = %q, not a hold state", body, st)
			}
		}
		if err != nil {
			if r != (respBody{}) {
				t.Fatalf("respParse(%q) returned %+v with error %v", body, r, err)
			}
			return
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("respParse accepted invalid JSON %q", body)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(body, &members); err != nil {
			t.Fatalf("respParse accepted %q, which is not a JSON object: %v", body, err)
		}
		var status string
		if err := json.Unmarshal(members["status"], &status); err != nil || !bytes.HasPrefix(bytes.TrimSpace(members["status"]), []byte(`"`)) {
			t.Fatalf("respParse accepted %q whose status is not a string", body)
		}
		switch r.kind {
		case respApproved:
			if status != "APPROVED" && status != "ALLOWED" {
				t.Fatalf("approval for status %q: %q", status, body)
			}
			for k := range members {
				if !approvalMembers[k] {
					t.Fatalf("approval despite member %q outside the approval set: %q", k, body)
				}
			}
		case respDenied:
			if status != "DENIED" || r.errorCode == "" || r.attestation != "" {
				t.Fatalf("bad denial %+v for %q", r, body)
			}
		case respPending:
			if status != "PENDING" || r.holdID == "" || r.attestation != "" {
				t.Fatalf("bad pending %+v for %q", r, body)
			}
		default:
			t.Fatalf("respParse(%q) accepted with kind %d", body, r.kind)
		}
	})
}
