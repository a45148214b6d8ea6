// Package oauthtest owns a local OAuth authorization server double and a
// bearer-checking resource server (see oauthtest.go). It is for tests only:
// it imports only the standard library and production code must not import
// it.
package oauthtest
