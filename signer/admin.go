package signer

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
)

// The admin surface (GET /, /admin/...): for people on this machine. It
// serves the holds of an authz.Local: the signer's own, or the hub's
// embedded engine's when the hub runs with --policy.
//
// Every admin request must come over loopback (the peer address) and name a
// loopback Host with the listener's own port, so a web page elsewhere
// cannot reach it even by DNS rebinding, and a --listen-public signer does
// not expose it. A person authenticates with the admin token: the approval
// page URL the signer (or hub) logs carries it once (?token=…), which opens
// a session: a random id (256 bits from crypto/rand, never the token), kept
// server-side, compared in constant time and expiring after sessionLifetime,
// set as an HttpOnly SameSite=Strict cookie, and a redirect to the bare
// page. The CLI sends the token as Authorization: Bearer. State-changing
// requests (POST) must in addition carry the session's form token (the page
// embeds it; it is not the admin token either) or the bearer header, and,
// when the browser says where they come from (Origin, Sec-Fetch-Site), come
// from the page itself. Responses forbid framing (clickjacking an Approve
// button) and the page runs only its own script.

// AdminOptions configure an Admin. NewAdmin copies them.
type AdminOptions struct {
	// Local keeps the holds the surface shows and decides, and the recent
	// decisions. Required (NewAdmin panics without it).
	Local *authz.Local
	// Token authenticates people (the ?token= of the logged page URL, which
	// opens a page session) and the `sigil-hub holds` CLI (Bearer).
	// If empty, NewAdmin draws a random one (see Admin.Token).
	Token string
	// Name labels the page and its messages. If empty, "sigil-hub signer".
	Name string
	// Kid, if set, is the attestation key id shown on the page.
	Kid string
	// Now returns the current time (page sessions expire). If nil,
	// time.Now.
	Now func() time.Time
}

// Admin is the admin surface for people on this machine: the approval page
// (GET /) and its JSON API (GET /admin/holds, POST
// /admin/holds/{id}/approve|deny), answering only loopback requests
// addressed to its own loopback listener, with a token, CSRF and Origin
// checks. Safe for concurrent use.
type Admin struct {
	o        AdminOptions
	handler  http.Handler
	mu       sync.Mutex     // guards sessions
	sessions []adminSession // open page sessions, oldest first
}

// NewAdmin returns the admin surface over o.Local. It panics when o.Local
// is nil (a programmer error).
func NewAdmin(o AdminOptions) *Admin {
	if o.Local == nil {
		panic("signer: NewAdmin needs an authz.Local")
	}
	if o.Token == "" {
		o.Token = randomHex(32)
	}
	if o.Name == "" {
		o.Name = "sigil-hub signer"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Admin{o: o}
	mux := http.NewServeMux()
	a.register(mux)
	a.handler = mux
	return a
}

// register adds the admin routes to mux.
func (a *Admin) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", a.guard(a.handlePage))
	mux.HandleFunc("GET /admin/holds", a.guard(a.handleAdminList))
	mux.HandleFunc("POST /admin/holds/{id}/{verb}", a.guard(a.handleAdminResolve))
}

// Handler serves the approval page and the admin JSON API (and 404s
// elsewhere). Serve it on a loopback listener. Safe for concurrent use.
func (a *Admin) Handler() http.Handler { return a.handler }

// Token is the admin token the surface accepts. Safe for concurrent use.
func (a *Admin) Token() string { return a.o.Token }

// adminAuth is how an admin request authenticated.
type adminAuth int

const (
	authNone   adminAuth = iota
	authCookie           // the page's session cookie
	authBearer           // Authorization: Bearer <admin token> (CLI)
)

// cookieName is per port: two signers on one host keep separate sessions.
func cookieName(r *http.Request) string {
	if _, port, ok := localAddr(r); ok {
		return "sigil_signer_admin_" + port
	}
	return "sigil_signer_admin"
}

// localAddr returns the host and port of the address r arrived on.
func localAddr(r *http.Request) (host, port string, ok bool) {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(a.String())
	return host, port, err == nil
}

// loopbackIP reports whether host is a loopback IP address.
func loopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackRequest reports whether r came from a loopback peer and names a
// loopback Host whose port is the listener's.
func loopbackRequest(r *http.Request) bool {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	return err == nil && loopbackIP(peer) && loopbackHost(r)
}

// loopbackHost reports whether r's Host names a loopback host (localhost or
// a loopback IP) with the listener's port: what a browser sends only when a
// page on this machine's loopback address made the request, never after DNS
// rebinding (the Host is then the attacker's name).
func loopbackHost(r *http.Request) bool {
	host, port, err := net.SplitHostPort(r.Host)
	_, lport, ok := localAddr(r)
	return err == nil && authz.IsLoopbackHost(host) && ok && lport == port
}

// localLoopback reports whether r arrived on a loopback address of this
// machine.
func localLoopback(r *http.Request) bool {
	host, _, ok := localAddr(r)
	return ok && loopbackIP(host)
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

// sessionLifetime is how long a page session lasts; then the person opens
// the logged approval page URL again.
const sessionLifetime = 12 * time.Hour

// maxSessions bounds the open page sessions; opening one more ends the
// oldest.
const maxSessions = 32

// adminSession is one page session. Only the SHA-256 of its cookie value
// is kept.
type adminSession struct {
	id      [sha256.Size]byte
	form    string // the form token its page embeds
	expires time.Time
}

// newSession opens a page session and returns its cookie value.
func (a *Admin) newSession() string {
	v := randomHex(32)
	now := a.o.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	live := a.sessions[:0]
	for _, s := range a.sessions {
		if now.Before(s.expires) {
			live = append(live, s)
		}
	}
	if len(live) >= maxSessions {
		live = append(live[:0], live[len(live)-maxSessions+1:]...)
	}
	a.sessions = append(live, adminSession{id: sha256.Sum256([]byte(v)), form: randomHex(32), expires: now.Add(sessionLifetime)})
	return v
}

// session returns the form token of the live session whose cookie value is
// v. Every session is compared, in constant time.
func (a *Admin) session(v string) (form string, ok bool) {
	id := sha256.Sum256([]byte(v))
	now := a.o.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sessions {
		if subtle.ConstantTimeCompare(id[:], s.id[:]) == 1 && now.Before(s.expires) {
			form, ok = s.form, true
		}
	}
	return form, ok
}

// authenticate returns how r authenticated and, for a page session, the
// session's form token.
func (a *Admin) authenticate(r *http.Request) (adminAuth, string) {
	if tok, ok := bearer(r); ok {
		if equalSecret(tok, a.o.Token) {
			return authBearer, ""
		}
		return authNone, ""
	}
	if c, err := r.Cookie(cookieName(r)); err == nil {
		if form, ok := a.session(c.Value); ok {
			return authCookie, form
		}
	}
	return authNone, ""
}

// guard guards an admin endpoint: loopback only, authenticated, and for
// POSTs same-origin with the token in the form or header.
func (a *Admin) guard(next func(http.ResponseWriter, *http.Request, adminAuth, string)) http.HandlerFunc {
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
			http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: a.newSession(), Path: "/",
				MaxAge: int(sessionLifetime / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		auth, form := a.authenticate(r)
		if auth == authNone {
			if r.URL.Path == "/" {
				http.Error(w, a.o.Name+": open the approval page URL it logged (it carries the admin token)", http.StatusUnauthorized)
				return
			}
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin token"})
			return
		}
		if r.Method == http.MethodPost && auth == authCookie {
			// A browser form: the cookie alone is not enough (CSRF); the
			// page embeds its session's form token in every form.
			if err := r.ParseForm(); err != nil || !equalSecret(r.PostForm.Get("csrf"), form) {
				http.Error(w, "missing or wrong form token: reload the approval page", http.StatusForbidden)
				return
			}
		}
		next(w, r, auth, form)
	}
}

func (a *Admin) handleAdminList(w http.ResponseWriter, r *http.Request, _ adminAuth, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{"holds": a.o.Local.Holds()})
}

func (a *Admin) handleAdminResolve(w http.ResponseWriter, r *http.Request, auth adminAuth, _ string) {
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "deny" {
		http.NotFound(w, r)
		return
	}
	info, err := a.o.Local.Resolve(r.PathValue("id"), verb == "approve")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); auth == authCookie && mt != "application/json" {
		// Back to the page (Post/Redirect/Get); a failure shows there as a notice.
		to := "/"
		if err != nil {
			to = "/?notice=" + url.QueryEscape(err.Error())
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	switch {
	case errors.Is(err, authz.ErrNoHold):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, authz.ErrHoldDecided):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"hold": info})
	}
}

// pageHold is one pending hold as the page shows it.
type pageHold struct {
	authz.HoldInfo
	Pretty  string // arguments, complete, indented and escaped (PrettyArguments)
	Created int64  // unix seconds, for the client-side age
	Since   string
}

type pageData struct {
	Nonce, CSRF, Name, PolicyHash, Kid, Notice string
	Pending                                    []pageHold
	Recent                                     []pageRecord
}

type pageRecord struct {
	authz.Record
	When string
}

func (a *Admin) handlePage(w http.ResponseWriter, r *http.Request, _ adminAuth, form string) {
	d := pageData{Nonce: randomHex(16), CSRF: form, Name: a.o.Name, PolicyHash: a.o.Local.PolicyHash(), Kid: a.o.Kid,
		Notice: r.URL.Query().Get("notice")}
	for _, h := range a.o.Local.Holds() {
		if h.State != authz.HoldPending {
			continue
		}
		d.Pending = append(d.Pending, pageHold{HoldInfo: h, Pretty: PrettyArguments(h.Arguments), Created: h.Created.Unix(),
			Since: h.Created.Local().Format(time.TimeOnly)})
	}
	for _, rec := range a.o.Local.Recent() {
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
// the package keeps no globals). Every field a client chose (server id,
// tool, action, agent, task, rule, hold id, error code, notice) goes
// through v (Visible): html/template escapes markup, v makes control,
// bidirectional and invisible characters visible.
func pageTemplate() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{"v": Visible}).Parse(strings.TrimSpace(pageHTML)))
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
.hold pre{background:#f6f6f6;padding:.6rem;white-space:pre-wrap;word-break:break-all}
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
{{if .Notice}}<p class="notice">{{v .Notice}}</p>{{end}}
<div id="live">
<h2>Pending ({{len .Pending}})</h2>
{{range .Pending}}
<div class="hold" id="{{.ID}}">
<div><strong>{{if .ServerID}}{{v .ServerID}}{{else}}{{v .Action}}{{end}}</strong>{{if .Tool}} · tool <code>{{v .Tool}}</code>{{end}}{{if .AgentID}} · agent <code>{{v .AgentID}}</code>{{end}} · <span class="age" data-created="{{.Created}}">since {{.Since}}</span></div>
<div class="meta">hold <code>{{v .ID}}</code> · action <code>{{v .Action}}</code>{{if .TaskID}} · task <code>{{v .TaskID}}</code>{{end}}{{if .Rule}} · rule <code>{{v .Rule}}</code>{{end}} · {{len .Arguments}} bytes of arguments, all shown</div>
<pre>{{.Pretty}}</pre>
<form method="post" action="/admin/holds/{{.ID}}/approve"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button class="approve" type="submit" data-hold="{{.ID}}">Approve</button></form>
<form method="post" action="/admin/holds/{{.ID}}/deny"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button class="deny" type="submit" data-hold="{{.ID}}">Deny</button></form>
</div>
{{else}}
<p>No calls are waiting.</p>
{{end}}
<h2>Recent decisions</h2>
<table>
<tr><th>time</th><th>action</th><th>decision</th><th>code</th><th>hold</th></tr>
{{range .Recent}}<tr><td>{{.When}}</td><td><code>{{v .Action}}</code></td><td>{{if eq .Surface "hold_resolve"}}hold {{end}}{{v .Decision}}</td><td>{{v .Code}}</td><td>{{v .HoldID}}</td></tr>
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
