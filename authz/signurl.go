package authz

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// CheckSignURL is the one validation of a Sigil Sign base URL, whichever
// layer gave it (--sign-url, SIGIL_SIGN_URL, sign_url in a file, or the
// `holds --sign-url` of the approvals CLI). The API key (or the admin token)
// goes to this URL as a bearer token, so it must be https, or plain http to a
// loopback host only (localhost, 127.0.0.0/8, ::1); it may not carry user
// information, a query or a fragment. It returns the URL without trailing
// slashes. The error says what is wrong without repeating the URL, which may
// hold a password.
func CheckSignURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "", errors.New("must be an absolute http(s) URL such as https://sign.sigilcore.com")
	case u.User != nil:
		return "", errors.New("must not contain user information (user:password@); the API key comes from SIGIL_API_KEY")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("must not have a query or fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return "", errors.New("must use https (plain http is accepted only for localhost and loopback addresses, since the key would travel in cleartext)")
	default:
		return "", errors.New("must be an http(s) URL")
	}
	return strings.TrimRight(raw, "/"), nil
}

// IsLoopbackHost reports whether host (a URL's Hostname(): no port, no
// brackets) is localhost or a loopback IP address.
func IsLoopbackHost(host string) bool {
	return strings.EqualFold(host, "localhost") || net.ParseIP(host).IsLoopback() // a nil IP is no loopback
}
