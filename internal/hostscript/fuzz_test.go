package hostscript

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// hostBytes is the set of bytes the host program accepts in a decoded data
// block (decode_data's tr); anything else makes it refuse the whole block.
const hostBytes = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@+/=:-\n"

// FuzzProvision: whatever the inputs, Provision either refuses them with a
// FieldError or returns the constant program with a data block the host
// accepts, holding exactly the given values.
func FuzzProvision(f *testing.F) {
	f.Add("pp-a", "req-1", "alice@example.com", fixedCA, int64(2e9), uint64(7), false)
	f.Add("pp-$(id)", "req;1", "a\nb", fixedCA+"\nssh-ed25519 AAAA", int64(-1), uint64(0), true)
	f.Add("-rf", "../x", "\u0430lice", "", int64(1e12), uint64(1<<64-1), true)
	f.Add("pp-a\x00", "r`id`", "x'y", "ssh-rsa AAAAB3NzaC1yc2E=", int64(1), uint64(1), false)
	template := generated(f)["provision"]
	static := strings.Split(template, "\n")
	f.Fuzz(func(t *testing.T, user, request, requester, key string, expires int64, serial uint64, sudo bool) {
		g := Grant{Username: user, RequestID: request, Requester: requester, CAPublicKey: key,
			ExpiresAt: time.Unix(expires, 0), Serial: serial, Sudo: sudo}
		script, err := Provision(g)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || script != "" {
				t.Fatalf("Provision(%+v) = %d bytes, %v; want only a FieldError", g, len(script), err)
			}
			return
		}
		onlyDataDiffers(t, script, static)
		data := decodeData(t, script)
		if strings.Trim(data, hostBytes) != "" {
			t.Fatalf("the data block holds bytes the host refuses: %q", data)
		}
		for _, want := range []string{"\nuser=" + user + "\n", "\nrequest=" + request + "\n", "\nrequester=" + requester + "\n"} {
			if !strings.Contains(data, want) {
				t.Fatalf("the data block %q lacks %q", data, want)
			}
		}
		if n := strings.Count(data, "\n"); n != 10 {
			t.Fatalf("the data block has %d lines, want 10: %q", n, data)
		}
	})
}

// onlyDataDiffers fails unless script is the program static, line for
// line, but for its data line.
func onlyDataDiffers(t *testing.T, script string, static []string) {
	t.Helper()
	lines := strings.Split(script, "\n")
	if len(lines) != len(static) {
		t.Fatalf("the script has %d lines, the program %d", len(lines), len(static))
	}
	for i := range lines {
		if i != dataLineNumber-1 && lines[i] != static[i] {
			t.Fatalf("line %d depends on the input: %q", i+1, lines[i])
		}
	}
}

// FuzzRevoke does the same for revocations, whose CA key is optional.
func FuzzRevoke(f *testing.F) {
	f.Add("pp-a", uint64(7), fixedCA)
	f.Add("pp-a", uint64(0), "")
	f.Add("pp a", uint64(1), "garbage")
	f.Add("pp-$(id)", uint64(1), fixedCA+"\nssh-ed25519 AAAA")
	static := strings.Split(generated(f)["revoke"], "\n")
	f.Fuzz(func(t *testing.T, user string, serial uint64, key string) {
		r := Revocation{Username: user, Serial: serial, CAPublicKey: key}
		script, err := Revoke(r)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || script != "" {
				t.Fatalf("Revoke(%+v) = %d bytes, %v; want only a FieldError", r, len(script), err)
			}
			return
		}
		onlyDataDiffers(t, script, static)
		if data := decodeData(t, script); strings.Trim(data, hostBytes) != "" || !strings.Contains(data, "\nuser="+user+"\n") {
			t.Fatalf("data block %q", data)
		}
	})
}
