package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// passport serve stops at start on a notifications file it cannot use,
// naming the flag, the file, the sink and what to do, before it opens
// anything, and without printing the secret it did read.
func TestServeRefusesABadNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("short-but-secret\n"), 0o600)
	path := filepath.Join(dir, "notify.json")
	os.WriteFile(path, []byte(`{"sinks": [{"name": "siem", "type": "webhook", "url": "https://siem.example.com/hook", "secret_file": "`+secret+`"}]}`), 0o600)
	_, stderr, err := passportRun(t, "serve", "--url", "https://passport.example.com", "--ledger", "sqlite://"+filepath.Join(dir, "ledger.db"), "--notify-config", path)
	if err == nil {
		t.Fatal("passport serve started with a 16-byte webhook secret")
	}
	want := "--notify-config " + path + ": sinks[0] (siem): the secret from the file " + secret + " is 16 bytes; use at least 32 random bytes"
	if !strings.Contains(stderr, want) || strings.Contains(stderr, "short-but-secret") {
		t.Errorf("stderr %q; want %q and no secret", stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "ledger.db")); err == nil {
		t.Error("the ledger was opened before the notifications file was checked")
	}
}

// passport lab up checks a notifications file for its service before it
// starts anything, with passport serve's words.
func TestLabUpRefusesABadNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.json")
	os.WriteFile(path, []byte(`{"sinks": [{"name": "ops", "type": "pager"}]}`), 0o600)
	labDir := filepath.Join(dir, "lab")
	_, stderr, err := passportRun(t, "lab", "up", "--hosts", "0", "--dir", labDir, "--notify-config", path)
	if err == nil || !strings.Contains(stderr, "--notify-config "+path+": sinks[0] (ops)") {
		t.Fatalf("lab up with a bad notifications file: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(labDir); err == nil {
		t.Error("the lab started before the notifications file was checked")
	}
	if _, stderr, err := passportRun(t, "lab", "up", "--hosts", "0", "--dir", labDir, "--service=false", "--notify-config", path); err == nil || !strings.Contains(stderr, "--notify-config is for the lab's Passport service") {
		t.Errorf("lab up --service=false --notify-config: %v\n%s", err, stderr)
	}
}
