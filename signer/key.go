package signer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadOrCreateKey returns the Ed25519 signing key stored at path (PEM,
// "PRIVATE KEY", PKCS #8) and its kid (the RFC 7638 thumbprint of the public
// key). On first use it creates the folder (0700) and the key file (0600).
// On Unix it refuses a key file that group or others may read or write,
// since anyone who can read it can forge approvals. Concurrent first runs
// are safe: the file is created exclusively and a loser loads the winner's
// key.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, string, error) {
	key, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, kidOf(key), err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("signing key folder: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generating a signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("encoding the signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err := loadKey(path)
		return key, kidOf(key), err
	}
	if err != nil {
		return nil, "", fmt.Errorf("creating signing key file: %w", err)
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, "", fmt.Errorf("writing signing key file %s: %w", path, werr)
	}
	return priv, kidOf(priv), nil
}

func kidOf(k ed25519.PrivateKey) string {
	if len(k) != ed25519.PrivateKeySize {
		return ""
	}
	return Thumbprint(k.Public().(ed25519.PublicKey))
}

// loadKey reads an existing key file; a missing file wraps fs.ErrNotExist.
func loadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("signing key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key file %s has mode %04o: group or others can access it, and anyone who can read it can forge approvals; run `chmod 600 %s`",
			path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("signing key file %s: want one PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key file %s: %v", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key file %s: not an Ed25519 key", path)
	}
	return ek, nil
}
