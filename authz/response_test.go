package authz

import (
	"strings"
	"testing"
)

func TestRespParseFields(t *testing.T) {
	tests := []struct {
		name string
		body string
		want respBody
	}{
		{"approval", `{"status":"ALLOWED","policyHash":"p","task_id":"t","message":"m","intentAttestation":"a.b.c","decision_record":"d"}`,
			respBody{kind: respApproved, policyHash: "p", taskID: "t", message: "m", attestation: "a.b.c", decisionRecord: "d"}},
		{"denial", `{"status":"DENIED","errorCode":"E","message":"m","next_steps":"n","policy_hash":"p"}`,
			respBody{kind: respDenied, errorCode: "E", message: "m", nextSteps: "n", policyHash: "p"}},
		{"pending", `{"status":"PENDING","holdId":"h","message":"wait"}`,
			respBody{kind: respPending, holdID: "h", message: "wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := respParse([]byte(tt.body))
			if err != nil || got != tt.want {
				t.Errorf("respParse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRespParseRejects(t *testing.T) {
	for _, body := range []string{
		`{"status":"DENIED","error_code":"E","errorCode":"E"}`,
		`{"status":"PENDING","hold_id":"h","holdId":"h"}`,
		`{"status":"APPROVED","intent_attestation":null,"intentAttestation":null}`,
		`{"status":"PENDING","hold_id":"h","intent_attestation":"a.b.c"}`,
		`{"status":"DENIED","error_code":"E","intent_attestation":"a.b.c"}`,
		`{"status":"PENDING","hold_id":7}`,
		`{"status":"DENIED","error_code":"E","next_steps":null}`,
		`{"status":"APPROVED","next_steps":"x"}`,
		`{"status":"PENDING","hold_id":"h","error_code":"E"}`,
		`{"Status":"APPROVED"}`,
		`{"status":"APPROVED ","x":1}`,
		`null`,
		`"APPROVED"`,
	} {
		if r, err := respParse([]byte(body)); err == nil {
			t.Errorf("respParse(%s) = %+v, want an error", body, r)
		}
	}
}

func TestRespParseHold(t *testing.T) {
	tests := []struct {
		body string
		want string // "" = error
	}{
		{`{"status":"PENDING"}`, HoldPending},
		{`{"hold_id":"h","status":"APPROVED","intent":{"action":"x"},"policy":{"hash":"p"}}`, HoldApproved},
		{`{"state":"DENIED"}`, HoldDenied},
		{`{"status":"EXPIRED","state":"EXPIRED"}`, HoldExpired},
		{`{"status":"PENDING","state":"APPROVED"}`, ""},
		{`{"status":"approved"}`, ""},
		{`{"status":"REJECTED"}`, ""},
		{`{"status":null}`, ""},
		{`{}`, ""},
		{`{"status":"APPROVED","status":"DENIED"}`, ""},
		{`{"status":"APPROVED","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ""},
		{`[]`, ""},
		{`garbage`, ""},
	}
	for _, tt := range tests {
		got, err := respParseHold([]byte(tt.body))
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("respParseHold(%s) = %q, %v; want %q", tt.body, got, err, tt.want)
		}
	}
}
