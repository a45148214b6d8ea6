package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/sigilcore/sigil-hub/hub"
	"github.com/sigilcore/sigil-hub/signer"
)

// The hub's own approval page in --policy mode (README "Offline: a local
// policy instead of Sigil Sign"): the embedded engine's holds, served by the
// same admin surface as `sigil-hub sign`'s (signer.Admin over the same
// authz.Local), on loopback only.

// defaultApprovals is where the page listens when a policy is used and
// --approvals is not given: loopback, a free port (logged with its URL).
const defaultApprovals = "127.0.0.1:0"

// approvalsAddr resolves --approvals: "" when no page is served. The page
// exists only with a local policy: with Sigil Sign or `sigil-hub sign`,
// holds are decided there.
func approvalsAddr(flagValue string, policy bool) (string, error) {
	switch {
	case flagValue == "off":
		return "", nil
	case flagValue == "" && policy:
		return defaultApprovals, nil
	case flagValue == "":
		return "", nil
	case !policy:
		return "", errors.New("--approvals serves the approval page of a local policy (--policy): with --sign-url, decide held calls on the signer's own page or with `sigil-hub holds`")
	case !isLoopbackListen(flagValue):
		return "", fmt.Errorf("--approvals %q: the approval page decides tool calls, so it listens on loopback only (e.g. 127.0.0.1:8788)", flagValue)
	}
	return flagValue, nil
}

// adminTokenDir holds one admin token file per listening port, so that
// `sigil-hub holds --sign-url http://127.0.0.1:PORT` finds the token of
// whichever hub or signer listens there.
func adminTokenDir(cfgDir string) string { return filepath.Join(cfgDir, "admin-tokens") }

// adminTokenPath is the token file of the admin surface listening at addr.
func adminTokenPath(cfgDir, addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("address %q has no port", addr)
	}
	return filepath.Join(adminTokenDir(cfgDir), port), nil
}

// logApprovalPage logs the approval page URL (with its login token) and
// how to decide holds from a terminal; `sigil-hub sign` and the hub log it
// alike.
func logApprovalPage(logger *slog.Logger, pageAddr, token string) {
	logger.Info("approval page (keep this URL private: it carries the admin token)",
		"url", "http://"+pageAddr+"/?token="+url.QueryEscape(token))
}

// approvals is the running approval page of a --policy hub.
type approvals struct {
	srv       *http.Server
	ln        net.Listener
	tokenFile string // "" when none was written
	token     string
	logger    *slog.Logger
}

// newApprovals listens on addr and prepares the page over h's embedded
// engine. It writes the admin token file for `sigil-hub holds` and logs the
// page URL.
func newApprovals(addr string, h *hub.Hub, getenv func(string) string, logger *slog.Logger) (*approvals, error) {
	l := h.LocalAuthorizer()
	if l == nil {
		return nil, errors.New("--approvals: the hub has no local policy engine to serve holds for")
	}
	adm := signer.NewAdmin(signer.AdminOptions{Local: l, Name: "sigil-hub"})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--approvals: listen: %w", err)
	}
	a := &approvals{ln: ln, token: adm.Token(), logger: logger,
		srv: &http.Server{Handler: adm.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}}
	bound := ln.Addr().String()
	base := "http://" + bound
	if dir, err := signerConfigDir(getenv); err != nil {
		logger.Warn("no admin token file for `sigil-hub holds` (use the approval page)", "err", err)
	} else if path, err := adminTokenPath(dir, bound); err != nil {
		logger.Warn("no admin token file for `sigil-hub holds` (use the approval page)", "err", err)
	} else if err := writePrivateFile(path, []byte(a.token+"\n")); err != nil {
		logger.Warn("writing the admin token file for `sigil-hub holds` failed (use the approval page)", "err", err)
	} else {
		a.tokenFile = path
	}
	logger.Info("held calls wait for approval on this hub's approval page", "url", base)
	logApprovalPage(logger, bound, a.token)
	logger.Info("decide held calls from a terminal", "holds", "sigil-hub holds list --sign-url "+base)
	return a, nil
}

// serve is the run.Group actor: it returns when stop shuts the server down.
func (a *approvals) serve() error {
	if err := a.srv.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("approval page: %w", err)
	}
	return nil
}

// stop is the actor's interrupt: graceful shutdown, then the token file goes.
func (a *approvals) stop(error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
	if a.tokenFile != "" {
		removeIfOurs(a.tokenFile, a.token+"\n")
	}
}

// holdsTokenFile picks the admin token for `sigil-hub holds --sign-url
// base`: the per-port file of whatever listens there (a --policy hub or a
// signer), else the signer's default token file.
func holdsTokenFile(cfgDir, base string) string {
	if u, err := url.Parse(base); err == nil && u.Port() != "" {
		if p, err := adminTokenPath(cfgDir, u.Host); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return filepath.Join(cfgDir, "signer-admin-token")
}
