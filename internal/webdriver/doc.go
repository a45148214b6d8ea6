// Package webdriver is a minimal W3C WebDriver client for tests: it starts
// chromedriver on a free loopback port, opens one headless Chromium session
// and drives it (open a URL, click an element, read the page source) over
// plain net/http, with no dependency.
//
// It is test-only: its functions take a testing.TB and fail the test on a
// driver error. A test calls Start, which skips the test when chromium or
// chromedriver is not on PATH, unless Options.Require is set (CI sets
// SIGIL_HUB_REQUIRE_BROWSER=1 and installs both with
// `apt-get install -y chromium chromium-driver`).
//
// webdriver imports only the standard library and internal/testbuf (the
// driver's log). It must not import any other sigil-hub package, and
// production code must not import it.
package webdriver
