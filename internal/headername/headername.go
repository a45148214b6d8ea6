// Package headername holds the one check of an HTTP header name that the
// config file and the importer both apply to the headers a user sets for a
// remote server.
//
// It imports only the standard library and must not import any other
// sigil-hub package.
package headername

import "strings"

// Valid reports whether s is a header field name: an RFC 9110 token, one
// or more of the letters, digits and !#$%&'*+-.^_`|~.
func Valid(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
