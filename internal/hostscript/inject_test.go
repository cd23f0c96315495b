package hostscript

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func authorizedKey(t testing.TB, key any) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// testCA returns a fresh ed25519 CA public key in authorized_keys form.
func testCA(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub)
}

// hostile are values that must never reach a root shell as anything but
// refused input.
var hostile = []struct{ name, value string }{
	{"empty", ""},
	{"semicolon", "pp-a;id"},
	{"command substitution", "pp-$(id)"},
	{"backticks", "pp-`id`"},
	{"single quote", "pp-a'b"},
	{"double quote", `pp-a"b`},
	{"newline", "pp-a\nsudo=1"},
	{"carriage return", "pp-a\r"},
	{"NUL", "pp-a\x00b"},
	{"space", "pp a"},
	{"tab", "pp\ta"},
	{"path traversal", "../../etc/passwd"},
	{"slash", "pp/a"},
	{"leading dash", "-rf"},
	{"glob", "pp-*"},
	{"pipe", "pp-a|sh"},
	{"redirect", "pp-a>/etc/shadow"},
	{"ampersand", "pp-a&"},
	{"dollar", "pp-$HOME"},
	{"backslash", `pp-a\`},
	{"equals", "pp=a"},
	{"percent token", "pp-%u"},
	{"cyrillic a look-alike", "pp-\u0430dmin"},
	{"fullwidth letters", "pp-\uff41\uff42"},
	{"zero-width space", "pp-a\u200b"},
	{"right-to-left override", "pp-\u202eabc"},
	{"very long", strings.Repeat("a", 100_000)},
	{"invalid UTF-8", "pp-\xff\xfe"},
}

func TestGoRefusesHostileFields(t *testing.T) {
	ca := testCA(t)
	valid := Grant{Username: "pp-a", RequestID: "req-1", Requester: "alice@example.com", CAPublicKey: ca, ExpiresAt: time.Unix(2e9, 0), Serial: 9}
	if _, err := Provision(valid); err != nil {
		t.Fatalf("the valid grant is refused: %v", err)
	}
	type field struct {
		name string
		set  func(g *Grant, v string)
	}
	fields := []field{
		{"Username", func(g *Grant, v string) { g.Username = v }},
		{"RequestID", func(g *Grant, v string) { g.RequestID = v }},
		{"Requester", func(g *Grant, v string) { g.Requester = v }},
		{"CAPublicKey", func(g *Grant, v string) { g.CAPublicKey = v }},
	}
	for _, f := range fields {
		for _, h := range hostile {
			// '=' and ':' are legal in a requester (SAML subjects); the
			// equals case is hostile only elsewhere.
			if f.name == "Requester" && h.name == "equals" {
				continue
			}
			t.Run(f.name+"/"+h.name, func(t *testing.T) {
				g := valid
				f.set(&g, h.value)
				script, err := Provision(g)
				assertFieldError(t, err, f.name, script)
			})
		}
	}
	for _, h := range hostile {
		t.Run("Extend/"+h.name, func(t *testing.T) {
			script, err := Extend(h.value, time.Unix(2e9, 0))
			assertFieldError(t, err, "Username", script)
		})
		t.Run("Revoke/"+h.name, func(t *testing.T) {
			script, err := Revoke(Revocation{Username: h.value, Serial: 1, CAPublicKey: ca})
			assertFieldError(t, err, "Username", script)
		})
	}
	for name, g := range map[string]Grant{
		"username too long":    with(valid, func(g *Grant) { g.Username = "pp-" + strings.Repeat("a", 18) }),
		"username uppercase":   with(valid, func(g *Grant) { g.Username = "PP-A" }),
		"username digit first": with(valid, func(g *Grant) { g.Username = "1pp" }),
		"request id too long":  with(valid, func(g *Grant) { g.RequestID = strings.Repeat("r", 65) }),
		"zero expiry":          with(valid, func(g *Grant) { g.ExpiresAt = time.Time{} }),
		"expiry before 1970":   with(valid, func(g *Grant) { g.ExpiresAt = time.Unix(-5, 0) }),
		"expiry after 5000":    with(valid, func(g *Grant) { g.ExpiresAt = time.Date(5200, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"zero serial":          with(valid, func(g *Grant) { g.Serial = 0 }),
	} {
		t.Run(name, func(t *testing.T) {
			script, err := Provision(g)
			var fe *FieldError
			if !errors.As(err, &fe) || script != "" {
				t.Fatalf("Provision = %d bytes, %v; want a FieldError", len(script), err)
			}
		})
	}
}

func with(g Grant, change func(*Grant)) Grant {
	change(&g)
	return g
}

func assertFieldError(t *testing.T, err error, field, script string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a FieldError for %s", err, field)
	}
	if fe.Field != field || !strings.Contains(err.Error(), field) {
		t.Errorf("error %q names %s, want %s", err, fe.Field, field)
	}
	if script != "" {
		t.Errorf("a script was returned along with the error")
	}
}

func TestCAPublicKey(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	ed := testCA(t)
	certKey := func() string {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		sshPub, _ := ssh.NewPublicKey(pub)
		signer, _ := ssh.NewSignerFromKey(priv)
		cert := &ssh.Certificate{Key: sshPub, CertType: ssh.UserCert, ValidPrincipals: []string{"x"}, ValidBefore: ssh.CertTimeInfinity}
		if err := cert.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return string(ssh.MarshalAuthorizedKey(cert))
	}()
	tests := []struct {
		name, key string
		ok        bool
	}{
		{"ed25519 with comment", ed + " passport ca", true},
		{"ed25519 with newline", ed + "\n", true},
		{"ecdsa p256", authorizedKey(t, &ecKey.PublicKey), true},
		{"rsa 1024 is too weak", authorizedKey(t, &rsaSmall.PublicKey), false},
		{"certificate", certKey, false},
		{"options", `command="id" ` + ed, false},
		{"two keys", ed + "\n" + ed, false},
		{"hostile comment after newline", ed + "\n$(reboot)", false},
		{"NUL", ed + "\x00", false},
		{"type mismatch", "ssh-rsa " + strings.Fields(ed)[1], false},
		{"garbage", "ssh-ed25519 AAAA", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, blob, err := caKeyFields(tt.key)
			if tt.ok != (err == nil) {
				t.Fatalf("caKeyFields: %s %s, %v; want ok=%v", typ, blob, err, tt.ok)
			}
			if err != nil {
				assertFieldError(t, err, "CAPublicKey", "")
				return
			}
			if strings.Trim(blob, base64Alphabet) != "" || strings.Contains(typ, " ") {
				t.Errorf("canonical form %q %q has stray characters", typ, blob)
			}
		})
	}
}

// validData is a provision data block the host accepts, as lines.
func validData(t *testing.T) []string {
	t.Helper()
	return strings.Split(strings.TrimSuffix(decodeData(t, generated(t)["provision"]), "\n"), "\n")
}

// hostProgram is the provision program with an arbitrary data block, built
// the way program() does but without Go's validation.
func hostProgram(data string) string {
	return program("provision", base64.StdEncoding.EncodeToString([]byte(data)), linuxBody("provision"))
}

// runUnprivileged runs a script with sh as nobody, so a check that failed to
// refuse could still change nothing on this machine.
func runUnprivileged(t *testing.T, script string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + os.TempDir()}
	cmd.Dir = "/"
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestHostRefusesHostileData feeds hand-made data blocks straight to the
// provision program, bypassing Go's checks: each must be refused in the
// decode step (exit 2) before the program does anything.
func TestHostRefusesHostileData(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed (openssh-client)")
	}
	lines := validData(t)
	set := func(key, value string) string {
		var b strings.Builder
		for _, l := range lines {
			if strings.HasPrefix(l, key+"=") {
				l = key + "=" + value
			}
			b.WriteString(l + "\n")
		}
		return b.String()
	}
	valid := strings.Join(lines, "\n") + "\n"
	// Values that would run a command if any step evaluated them create
	// this file (as nobody, who may write in its directory).
	// (t.TempDir's parent is closed to nobody.)
	dir, err := os.MkdirTemp("", "inject")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(dir, "pwned")
	touch := "touch " + canary
	cases := map[string]string{
		"user with semicolon":        set("user", "pp-a;id"),
		"user with command subst":    set("user", "pp-$(id)"),
		"user with backticks":        set("user", "pp-`id`"),
		"user with quote":            set("user", "pp-a'"),
		"user path traversal":        set("user", "../../root"),
		"user leading dash":          set("user", "-rf"),
		"user too long":              set("user", "pp-"+strings.Repeat("a", 18)),
		"user uppercase":             set("user", "ROOT"),
		"user look-alike":            set("user", "pp-\u0430"),
		"user with NUL":              set("user", "pp-a\x00"),
		"user with space":            set("user", "pp a"),
		"newline smuggles a key":     set("user", "pp-a\nsudo=1"),
		"duplicate key":              valid + "sudo=1\n",
		"missing key":                strings.Replace(valid, "sudo=1\n", "", 1),
		"keys reordered":             strings.Replace(strings.Replace(valid, "sudo=1\n", "", 1), "user=", "sudo=1\nuser=", 1),
		"line without equals":        valid + "garbage\n",
		"empty value":                set("request", ""),
		"request with slash":         set("request", "a/b"),
		"requester with dollar":      set("requester", "$USER"),
		"expiry in hex":              set("expires", "0x7fffffff"),
		"expiry negative":            set("expires", "-1"),
		"expiry with exponent":       set("expires", "2e9"),
		"serial octal":               set("serial", "0777"),
		"serial zero":                set("serial", "0"),
		"serial above 2^64":          set("serial", "18446744073709551616"),
		"serial with sign":           set("serial", "+5"),
		"sudo word":                  set("sudo", "yes"),
		"ca type dss":                set("ca_type", "ssh-dss"),
		"ca type injected":           set("ca_type", "ssh-ed25519;id"),
		"ca key not a key":           set("ca_key", "AAAAAAAAAAAAAAAAAAAAAAAA"),
		"ca key of another type":     set("ca_type", "ssh-rsa"),
		"ca key too long":            set("ca_key", strings.Repeat("A", 3000)),
		"another action":             strings.Replace(valid, "action=provision", "action=revoke", 1),
		"unknown format":             strings.Replace(valid, "format=1", "format=2", 1),
		"non-ascii byte":             valid + "x=\xff\n",
		"shell on a line of its own": set("requester", "a\n$("+touch+")"),
		"shell in a value":           set("requester", "$("+touch+")"),
		"backticks in a value":       set("requester", "`"+touch+"`"),
		"command after a semicolon":  set("request", "r;"+touch),
		"command after a newline":    set("request", "r\n"+touch),
		"shell in a key":             valid + "x$(" + touch + ")=1\n",
		"huge block":                 strings.Repeat("a", 9000),
		"empty block":                "",
		"crlf line endings":          strings.ReplaceAll(valid, "\n", "\r\n"),
	}
	// The valid block is the control: it must get past decoding (and then
	// fail for lack of privilege), or the test proves nothing.
	t.Run("control", func(t *testing.T) {
		code, stdout, stderr := runUnprivileged(t, hostProgram(valid))
		res, err := ParseResult(stdout)
		if err != nil {
			t.Fatalf("exit %d, %v\n%s", code, err, stderr)
		}
		if res.Step == "decode" || code == ExitData {
			t.Fatalf("the valid data block was refused: exit %d step %s\n%s", code, res.Step, stderr)
		}
	})
	// The canary's control: a command that does run leaves the file.
	t.Run("canary", func(t *testing.T) {
		if code, _, stderr := runUnprivileged(t, touch); code != 0 {
			t.Fatalf("%s as nobody: exit %d: %s", touch, code, stderr)
		}
		if _, err := os.Stat(canary); err != nil {
			t.Fatalf("a command that ran left no file: %v", err)
		}
		if err := os.Remove(canary); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("hostile", func(t *testing.T) {
		for name, data := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				code, stdout, stderr := runUnprivileged(t, hostProgram(data))
				res, err := ParseResult(stdout)
				if err != nil || code != ExitData || res.Code != ExitData || res.Step != "decode" {
					t.Fatalf("exit %d, result %+v (%v); want exit %d in step decode\nstderr: %s", code, res, err, ExitData, stderr)
				}
			})
		}
	})
	if _, err := os.Stat(canary); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a hostile data block ran a command: %s exists (%v)", canary, err)
	}
	t.Run("data line that is not base64", func(t *testing.T) {
		lines := strings.Split(hostProgram(valid), "\n")
		lines[dataLineNumber-1] = "PASSPORT_DATA='a b'"
		script := strings.Join(lines, "\n")
		code, stdout, _ := runUnprivileged(t, script)
		if res, _ := ParseResult(stdout); code != ExitData || res.Step != "decode" {
			t.Fatalf("exit %d, %q; want exit %d in step decode", code, stdout, ExitData)
		}
	})
	t.Run("program refuses to build a quote-breaking data line", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("program accepted a data block outside the base64 alphabet")
			}
		}()
		program("provision", "x'; reboot; '", provisionSource)
	})
}

// TestOtherProgramsRefuseHostileData: extend and revoke decode with the same
// library, but each checks its own fields; a few blocks per program.
func TestOtherProgramsRefuseHostileData(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed (openssh-client)")
	}
	_, blob, err := caKeyFields(fixedCA)
	if err != nil {
		t.Fatal(err)
	}
	programs := map[string]struct {
		body    string
		control string
		hostile []string
	}{
		"extend": {
			body:    extendSource,
			control: "format=1\naction=extend\nuser=pp-a\nexpires=2000000000\n",
			hostile: []string{
				"format=1\naction=extend\nuser=pp-$(id)\nexpires=2000000000\n",
				"format=1\naction=extend\nuser=pp-a\nexpires=2000000000;reboot\n",
				"format=1\naction=extend\nuser=root\nuser=pp-a\nexpires=2000000000\n",
				"format=1\naction=revoke\nuser=pp-a\nexpires=2000000000\n",
			},
		},
		"revoke": {
			body:    revokeSource,
			control: "format=1\naction=revoke\nuser=pp-a\nserial=5\nca_type=ssh-ed25519\nca_key=" + blob + "\n",
			hostile: []string{
				"format=1\naction=revoke\nuser=../../root\nserial=5\nca_type=ssh-ed25519\nca_key=" + blob + "\n",
				"format=1\naction=revoke\nuser=pp-a\nserial=5\nca_type=ssh-ed25519\nca_key=AAAAAAAAAAAAAAAAAAAAAAAA\n",
				"format=1\naction=revoke\nuser=pp-a\nserial=0\nca_type=ssh-ed25519\nca_key=" + blob + "\n",
				"format=1\naction=revoke\nuser=pp-a\nserial=-1\nca_type=\nca_key=\n",
			},
		},
	}
	for name, p := range programs {
		build := func(data string) string {
			return program(name, base64.StdEncoding.EncodeToString([]byte(data)), p.body)
		}
		t.Run(name+"/control", func(t *testing.T) {
			code, stdout, stderr := runUnprivileged(t, build(p.control))
			if res, _ := ParseResult(stdout); code == ExitData || res.Step == "decode" {
				t.Fatalf("the valid block was refused: exit %d\n%s", code, stderr)
			}
		})
		for i, data := range p.hostile {
			t.Run(fmt.Sprintf("%s/%d", name, i), func(t *testing.T) {
				t.Parallel()
				code, stdout, stderr := runUnprivileged(t, build(data))
				if res, _ := ParseResult(stdout); code != ExitData || res.Step != "decode" {
					t.Fatalf("%q: exit %d, %q; want exit %d in step decode\n%s", data, code, stdout, ExitData, stderr)
				}
			})
		}
	}
}
