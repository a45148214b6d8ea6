package signer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
)

// The admin surface over the hub's embedded engine (its page in --policy
// mode): the same API and protections over the same store of holds, whose
// decided holds the hub forgets at once (deciding twice answers 404).
func TestAdminDecidesTheHubsHeldCalls(t *testing.T) {
	p, err := policy.Parse([]byte(testPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := authz.NewLocal(authz.LocalOptions{Policy: p, PendingTimeout: time.Minute})
	adm := NewAdmin(AdminOptions{Local: l, Name: "sigil-hub"})
	ts := serve(t, adm.Handler())
	bearer := "Bearer " + adm.Token()

	type result struct {
		d   authz.Decision
		err error
	}
	hold := func(t *testing.T, args string) (string, <-chan result) {
		t.Helper()
		held := make(chan string, 1)
		done := make(chan result, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		go func() {
			d, err := l.Authorize(ctx, authz.Request{ServerID: "slack", Tool: "send_message", Arguments: json.RawMessage(args), TaskID: "t1",
				OnHold: func(id string, _ time.Duration) {
					select {
					case held <- id:
					default:
					}
				}})
			done <- result{d, err}
		}()
		return wait(t, held, "the hold"), done
	}

	for _, tc := range []struct {
		verb    string
		verdict authz.Verdict
		code    string
		state   string
	}{
		{"approve", authz.Approved, "", authz.HoldApproved},
		{"deny", authz.Denied, "SIGIL_HOLD_DENIED", authz.HoldDenied},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			id, done := hold(t, `{"text":"<b>hi</b>"}`)
			r := get(t, ts.URL+"/admin/holds", bearer)
			hs, _ := r.m["holds"].([]any)
			if r.status != 200 || len(hs) != 1 || !strings.Contains(string(r.body), `"state":"PENDING"`) || !strings.Contains(string(r.body), id) {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			// The guards are the signer's: no token, a rebinding Host.
			if r := get(t, ts.URL+"/admin/holds", ""); r.status != http.StatusUnauthorized {
				t.Fatalf("no token: %d", r.status)
			}
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/admin/holds/"+id+"/"+tc.verb, nil)
			req.Header.Set("Authorization", bearer)
			req.Host = "evil.example" + ts.URL[strings.LastIndex(ts.URL, ":"):]
			if r := do(t, req); r.status != http.StatusForbidden {
				t.Fatalf("rebinding Host: %d", r.status)
			}
			req, _ = http.NewRequest(http.MethodPost, ts.URL+"/admin/holds/"+id+"/"+tc.verb, nil)
			req.Header.Set("Authorization", bearer)
			r = do(t, req)
			if r.status != 200 || !strings.Contains(string(r.body), `"state":"`+tc.state+`"`) {
				t.Fatalf("%s: %d %s", tc.verb, r.status, r.body)
			}
			res := wait(t, done, "the held call")
			if res.err != nil || res.d.Verdict != tc.verdict || res.d.ErrorCode != tc.code || res.d.HoldID != id {
				t.Fatalf("decision %+v %v", res.d, res.err)
			}
			req, _ = http.NewRequest(http.MethodPost, ts.URL+"/admin/holds/"+id+"/"+tc.verb, nil)
			req.Header.Set("Authorization", bearer)
			if r := do(t, req); r.status != http.StatusNotFound {
				t.Fatalf("deciding twice: %d %s", r.status, r.body)
			}
		})
	}

	// The page: pending holds with escaped arguments, recent decisions.
	id, done := hold(t, `{"text":"<script>alert(1)</script>"}`)
	r := get(t, ts.URL+"/?token="+url.QueryEscape(adm.Token()), "")
	if r.status != http.StatusSeeOther {
		t.Fatalf("token exchange: %d", r.status)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.AddCookie((&http.Response{Header: r.header}).Cookies()[0])
	page := string(do(t, req).body)
	for _, want := range []string{"sigil-hub: calls waiting for approval", `data-hold="` + id + `"`, "&lt;script&gt;", "send_message",
		"SIGIL_HOLD_DENIED", "hold ALLOWED", l.PolicyHash()} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "agent <code></code>") {
		t.Errorf("page:\n%s", page)
	}
	if _, err := l.Resolve(id, false); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "the last held call")
}
