package hostscript

import (
	"errors"
	"os/exec"
	"strconv"
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
		if n := strings.Count(data, "\n"); n != 11 {
			t.Fatalf("the data block has %d lines, want 11: %q", n, data)
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
	f.Add("pp-a", uint64(1), "garbage")
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

// FuzzHostDecodesData feeds arbitrary data blocks to the provision program
// itself, as nobody (see runUnprivileged), past Go's checks. The program
// must refuse each in its decode step unless it is a block Provision would
// write for fields Go accepts: the checks on the host, which runs as root,
// are never weaker than Go's.
func FuzzHostDecodesData(f *testing.F) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		f.Skip("ssh-keygen is not installed: the host's checks of keys are held to it (scripts/install.sh installs openssh-client)")
	}
	valid := decodeData(f, generated(f)["provision"])
	f.Add(valid)
	f.Add(strings.Replace(valid, "sudo=1", "sudo=2", 1))
	f.Add(strings.Replace(valid, "record=0", "record=yes", 1))
	f.Add(strings.Replace(valid, "user=", "user=pp-$(id)", 1))
	f.Add(valid + "sudo=1\n")
	f.Add("")
	keys := []string{"format", "action", "user", "request", "requester", "expires", "serial", "sudo", "record", "ca_type", "ca_key"}
	f.Fuzz(func(t *testing.T, data string) {
		code, stdout, stderr := runUnprivileged(t, hostProgram(data))
		res, err := ParseResult(stdout)
		if err != nil {
			t.Fatalf("exit %d and no result line (%v)\nstderr: %s", code, err, stderr)
		}
		if res.Step == "decode" {
			if code != ExitData {
				t.Fatalf("the decode step ended with exit %d, want %d (bad data)\nstderr: %s", code, ExitData, stderr)
			}
			return
		}
		// Accepted: the block must be exactly what Provision writes for
		// the fields it holds.
		lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
		fields := map[string]string{}
		for i, l := range lines {
			k, v, ok := strings.Cut(l, "=")
			if !ok || i >= len(keys) || k != keys[i] {
				t.Fatalf("the host accepted a block with line %d %q: %q", i+1, l, data)
			}
			fields[k] = v
		}
		expires, err1 := strconv.ParseInt(fields["expires"], 10, 64)
		serial, err2 := strconv.ParseUint(fields["serial"], 10, 64)
		if err1 != nil || err2 != nil || len(lines) != len(keys) {
			t.Fatalf("the host accepted %q (%v, %v)", data, err1, err2)
		}
		g := Grant{Username: fields["user"], RequestID: fields["request"], Requester: fields["requester"],
			ExpiresAt: time.Unix(expires, 0), Serial: serial, Sudo: fields["sudo"] == "1", RequireRecording: fields["record"] == "1",
			CAPublicKey: fields["ca_type"] + " " + fields["ca_key"]}
		script, err := Provision(g)
		if err != nil {
			t.Fatalf("the host accepted %q, which Go refuses: %v", data, err)
		}
		if again := decodeData(t, script); again != data {
			t.Fatalf("the host accepted %q; Go writes those fields as %q", data, again)
		}
	})
}
