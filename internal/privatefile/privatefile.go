// Package privatefile writes files that hold secrets or state only their
// owner may read: the pin file, the local Sign's admin token and address.
//
// It imports only the standard library and must not import any other
// sigil-hub package.
package privatefile

import (
	"os"
	"path/filepath"
)

// Write writes data to path atomically with mode 0600, creating its folder
// with mode 0700 when missing: a reader sees the old content or the new,
// never a part, and never with wider permissions. The data goes to a
// temporary file in the same folder, which is renamed over path (and
// removed when anything fails).
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(f.Name(), 0o600)
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}
