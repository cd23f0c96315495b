package hostscript

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fixedCA is a constant ed25519 CA key, so golden files are stable.
const fixedCA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINOETy5+Llw4BV9Lr0+r0o7jzSFYgZYy8Jd7nKUd+bA/ passport-test-ca"

func fixedGrant() Grant {
	return Grant{
		Username:    "pp-golden01",
		RequestID:   "req-0123456789abcdef",
		Requester:   "alice@example.com",
		CAPublicKey: fixedCA,
		ExpiresAt:   time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Sudo:        true,
		Serial:      1234567890123456789,
		// Required, so the golden data block shows the flag set.
		RequireRecording: true,
	}
}

// generated returns one script per program for fixed inputs.
func generated(t testing.TB) map[string]string {
	t.Helper()
	prov, err := Provision(fixedGrant())
	if err != nil {
		t.Fatal(err)
	}
	ext, err := Extend("pp-golden01", time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := Revoke(Revocation{Username: "pp-golden01", Serial: 1234567890123456789, CAPublicKey: fixedCA})
	if err != nil {
		t.Fatal(err)
	}
	col, err := Collect(Collection{Users: []string{"pp-golden01", "pp-golden02"}, Prune: []string{"pp-golden01/20300101-000000-Ab12Cd"}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"provision": prov, "extend": ext, "revoke": rev, "sweep": Sweep(), "inventory": Inventory(), "collect": col}
}

func TestGolden(t *testing.T) {
	for name, got := range generated(t) {
		t.Run(name, func(t *testing.T) { assertGolden(t, name, got) })
	}
}

// assertGolden compares got with testdata/<name>.golden, or rewrites the
// file under -update.
func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s; if the change is intended, run go test -update and review the diff", name, path)
	}
}
