package server

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadFrontSecret: a missing file is created with 32 random bytes,
// mode 0600, and read back unchanged by the next caller (the other side
// of the split); a short file is refused.
func TestLoadFrontSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "front.secret")
	a, err := LoadFrontSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != FrontSecretSize || st.Mode().Perm() != 0o600 {
		t.Errorf("created %d bytes, mode %v; want %d bytes, 0600", len(a), st.Mode().Perm(), FrontSecretSize)
	}
	b, err := LoadFrontSecret(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("second load: %x, %v; want the same secret", b, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("tiny"), 0o600)
	if _, err := LoadFrontSecret(short); !errors.Is(err, ErrConfig) {
		t.Errorf("short secret: err = %v, want ErrConfig", err)
	}
}
