package signer

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The admin surface (GET /, /admin/...): for people on this machine. It
// serves any HoldDesk: the signer's own holds, or the embedded engine's
// (LocalDesk) when the hub runs with --policy.
//
// Every admin request must come over loopback (the peer address) and name a
// loopback Host with the listener's own port, so a web page elsewhere
// cannot reach it even by DNS rebinding, and a --listen-public signer does
// not expose it. A person authenticates with the admin token: the approval
// page URL the signer (or hub) logs carries it once (?token=…), which sets an
// HttpOnly SameSite=Strict cookie and redirects to the bare page; the CLI
// sends it as Authorization: Bearer. State-changing requests (POST) must in
// addition carry the token in the form (the page embeds it) or the bearer
// header, and, when the browser says where they come from (Origin,
// Sec-Fetch-Site), come from the page itself. Responses forbid framing
// (clickjacking an Approve button) and the page runs only its own script.

// adminAuth is how an admin request authenticated.
type adminAuth int

const (
	authNone   adminAuth = iota
	authCookie           // the page's session cookie
	authBearer           // Authorization: Bearer <admin token> (CLI)
)

// cookieName is per port: two signers on one host keep separate sessions.
func cookieName(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			return "sigil_signer_admin_" + port
		}
	}
	return "sigil_signer_admin"
}

// loopbackRequest reports whether r came from a loopback peer and names a
// loopback Host whose port is the listener's.
func loopbackRequest(r *http.Request) bool {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(peer); err != nil || ip == nil || !ip.IsLoopback() {
		return false
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return false
	}
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	_, lport, err := net.SplitHostPort(a.String())
	return err == nil && lport == port
}

// sameOrigin reports whether the browser-supplied provenance headers, when
// present, name the page itself.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

func (a *Admin) authenticate(r *http.Request) adminAuth {
	if tok, ok := bearer(r); ok {
		if equalSecret(tok, a.o.Token) {
			return authBearer
		}
		return authNone
	}
	if c, err := r.Cookie(cookieName(r)); err == nil && equalSecret(c.Value, a.o.Token) {
		return authCookie
	}
	return authNone
}

// guard guards an admin endpoint: loopback only, authenticated, and for
// POSTs same-origin with the token in the form or header.
func (a *Admin) guard(next func(http.ResponseWriter, *http.Request, adminAuth)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes browsers send Origin: null on form posts
		h.Set("Cache-Control", "no-store")
		if !loopbackRequest(r) {
			http.Error(w, "the admin surface answers only loopback requests addressed to its own loopback address", http.StatusForbidden)
			return
		}
		if !sameOrigin(r) {
			http.Error(w, "cross-origin admin request refused", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/" && r.URL.Query().Has("token") {
			// The logged approval page URL: trade the token for a cookie.
			if !equalSecret(r.URL.Query().Get("token"), a.o.Token) {
				http.Error(w, "wrong admin token: open the approval page URL that "+a.o.Name+" logged", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: a.o.Token, Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		auth := a.authenticate(r)
		if auth == authNone {
			if r.URL.Path == "/" {
				h.Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(a.o.Name + ": open the approval page URL it logged (it carries the admin token)\n"))
				return
			}
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin token"})
			return
		}
		if r.Method == http.MethodPost && auth == authCookie {
			// A browser form: the cookie alone is not enough (CSRF); the
			// page embeds the token in every form.
			if err := r.ParseForm(); err != nil || !equalSecret(r.PostForm.Get("token"), a.o.Token) {
				http.Error(w, "missing or wrong form token", http.StatusForbidden)
				return
			}
		}
		next(w, r, auth)
	}
}

func (a *Admin) handleAdminList(w http.ResponseWriter, r *http.Request, _ adminAuth) {
	writeJSON(w, http.StatusOK, map[string]any{"holds": a.o.Desk.Holds()})
}

func (a *Admin) handleAdminResolve(w http.ResponseWriter, r *http.Request, auth adminAuth) {
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "deny" {
		http.NotFound(w, r)
		return
	}
	info, err := a.o.Desk.Resolve(r.PathValue("id"), verb == "approve")
	form := auth == authCookie
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		form = false
	}
	if form {
		// Back to the page (Post/Redirect/Get); a failure shows there as a notice.
		to := "/"
		if err != nil {
			to = "/?notice=" + url.QueryEscape(err.Error())
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	switch {
	case errors.Is(err, ErrNoHold):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrHoldDecided):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"hold": info})
	}
}

// pageHold is one pending hold as the page shows it.
type pageHold struct {
	HoldInfo
	Pretty  string // arguments, indented
	Created int64  // unix seconds, for the client-side age
	Since   string
}

type pageData struct {
	Nonce, Token, Name, PolicyHash, Kid, Notice string
	Pending                                     []pageHold
	Recent                                      []pageRecord
}

type pageRecord struct {
	Record
	When string
}

func (a *Admin) handlePage(w http.ResponseWriter, r *http.Request, _ adminAuth) {
	d := pageData{Nonce: randomHex(16), Token: a.o.Token, Name: a.o.Name, PolicyHash: a.policyHash(), Kid: a.o.Kid,
		Notice: r.URL.Query().Get("notice")}
	for _, h := range a.o.Desk.Holds() {
		if h.State != HoldPending {
			continue
		}
		var b bytes.Buffer
		pretty := string(h.Arguments)
		if json.Indent(&b, h.Arguments, "", "  ") == nil {
			pretty = b.String()
		}
		d.Pending = append(d.Pending, pageHold{HoldInfo: h, Pretty: pretty, Created: h.Created.Unix(),
			Since: h.Created.Local().Format(time.TimeOnly)})
	}
	for _, rec := range a.o.Desk.Recent() {
		d.Recent = append(d.Recent, pageRecord{Record: rec, When: rec.Time.Local().Format(time.DateTime)})
	}
	var b bytes.Buffer
	if err := pageTemplate().Execute(&b, d); err != nil {
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+d.Nonce+"'; style-src 'nonce-"+d.Nonce+
		"'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// pageTemplate parses the approval page (cheap; parsed per request so that
// the package keeps no globals).
func pageTemplate() *template.Template {
	return template.Must(template.New("page").Parse(strings.TrimSpace(pageHTML)))
}

const pageHTML = `
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}}: approvals</title>
<style nonce="{{.Nonce}}">
body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.meta{color:#666;font-size:.85rem}
.hold{border:1px solid #ccc;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
.hold pre{background:#f6f6f6;padding:.6rem;overflow:auto;max-height:20rem;white-space:pre-wrap;word-break:break-all}
form{display:inline}
button{font-size:1rem;padding:.3rem 1.2rem;margin-right:.5rem;cursor:pointer}
button.approve{background:#1a7f37;color:#fff;border:0;border-radius:4px}
button.deny{background:#cf222e;color:#fff;border:0;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #eee}
.notice{background:#fff8c5;padding:.5rem}
</style>
</head>
<body>
<h1>{{.Name}}: calls waiting for approval</h1>
<p class="meta">{{if .PolicyHash}}policy hash <code>{{.PolicyHash}}</code>{{end}}{{if .Kid}} · key <code>{{.Kid}}</code>{{end}}</p>
{{if .Notice}}<p class="notice">{{.Notice}}</p>{{end}}
<div id="live">
<h2>Pending ({{len .Pending}})</h2>
{{range .Pending}}
<div class="hold" id="{{.ID}}">
<div><strong>{{if .ServerID}}{{.ServerID}}{{else}}{{.Action}}{{end}}</strong>{{if .Tool}} · tool <code>{{.Tool}}</code>{{end}}{{if .AgentID}} · agent <code>{{.AgentID}}</code>{{end}} · <span class="age" data-created="{{.Created}}">since {{.Since}}</span></div>
<div class="meta">hold <code>{{.ID}}</code> · action <code>{{.Action}}</code>{{if .Rule}} · rule <code>{{.Rule}}</code>{{end}}</div>
<pre>{{.Pretty}}</pre>
<form method="post" action="/admin/holds/{{.ID}}/approve"><input type="hidden" name="token" value="{{$.Token}}"><button class="approve" type="submit" data-hold="{{.ID}}">Approve</button></form>
<form method="post" action="/admin/holds/{{.ID}}/deny"><input type="hidden" name="token" value="{{$.Token}}"><button class="deny" type="submit" data-hold="{{.ID}}">Deny</button></form>
</div>
{{else}}
<p>No calls are waiting.</p>
{{end}}
<h2>Recent decisions</h2>
<table>
<tr><th>time</th><th>action</th><th>decision</th><th>code</th><th>hold</th></tr>
{{range .Recent}}<tr><td>{{.When}}</td><td><code>{{.Action}}</code></td><td>{{if eq .Surface "hold_resolve"}}hold {{end}}{{.Decision}}</td><td>{{.Code}}</td><td>{{.HoldID}}</td></tr>
{{end}}
</table>
</div>
<script nonce="{{.Nonce}}">
(function () {
  var live = document.getElementById("live"), last = live.innerHTML;
  function ages() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".age").forEach(function (e) {
      var s = Math.max(0, Math.round(now - Number(e.dataset.created)));
      e.textContent = "waiting " + (s < 120 ? s + " s" : Math.round(s / 60) + " min");
    });
  }
  function tick() {
    fetch("/", {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (t) {
        if (t === null) return;
        var n = new DOMParser().parseFromString(t, "text/html").getElementById("live");
        if (n && n.innerHTML !== last) { last = n.innerHTML; live.innerHTML = last; }
        ages();
      })
      .catch(function () {});
  }
  ages();
  setInterval(tick, 2000);
})();
</script>
</body>
</html>
`

// policyHash is the hash the page shows, "" if none.
func (a *Admin) policyHash() string {
	if a.o.PolicyHash == nil {
		return ""
	}
	return a.o.PolicyHash()
}
