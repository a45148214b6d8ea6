package signer

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/webdriver"
)

// A headless-Chromium test of the approval page, driven over plain HTTP
// WebDriver (internal/webdriver, no dependency). CI installs the browser with
//
//	apt-get install -y chromium chromium-driver
//
// and sets SIGIL_HUB_REQUIRE_BROWSER=1 so that a missing browser fails
// instead of skipping.

func TestApprovalPageInBrowser(t *testing.T) {
	wd := webdriver.Start(t, webdriver.Options{Require: os.Getenv(webdriver.RequireEnv) == "1"})
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())

	// The page is open before anything is held: holds appear by its refresh.
	wd.Open(t, ts.URL+"/?token="+url.QueryEscape(srv.AdminToken()))
	if src := wd.Source(t); !bytes.Contains([]byte(src), []byte("No calls are waiting")) {
		t.Fatalf("page after login:\n%s", src)
	}

	for _, tc := range []struct {
		button  string
		verdict authz.Verdict
		code    string
	}{
		{"approve", authz.Approved, ""},
		{"deny", authz.Denied, "SIGIL_HOLD_DENIED"},
	} {
		t.Run(tc.button, func(t *testing.T) {
			done, held := startCall(t, ts.URL, "slack", "send_message")
			id := wait(t, held, "the hold")
			wd.Click(t, fmt.Sprintf(`button.%s[data-hold="%s"]`, tc.button, id))
			r := wait(t, done, "the waiting call")
			if r.err != nil || r.d.Verdict != tc.verdict || r.d.ErrorCode != tc.code || r.d.HoldID != id {
				t.Fatalf("decision %+v %v", r.d, r.err)
			}
			if tc.verdict == authz.Approved && r.d.Attestation == "" {
				t.Fatal("approval without a verified attestation")
			}
		})
	}
}
