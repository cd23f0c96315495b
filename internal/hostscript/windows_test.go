package hostscript

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

// fixedSealKey is a constant 3072-bit public "key" (its modulus is a fixed
// number, not a real key), so golden files are stable.
func fixedSealKey() *rsa.PublicKey {
	var b []byte
	for i := byte(0); len(b) < 384; i++ {
		h := sha256.Sum256([]byte{i})
		b = append(b, h[:]...)
	}
	b[0] |= 0x80
	return &rsa.PublicKey{N: new(big.Int).SetBytes(b[:384]), E: 65537}
}

var (
	sealOnce sync.Once
	sealKey  *rsa.PrivateKey
)

// testSealKey is one real 3072-bit key shared by the tests (generating it is slow).
func testSealKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	sealOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			panic(err)
		}
		sealKey = k
	})
	return sealKey
}

func fixedWindowsGrant() WindowsGrant {
	return WindowsGrant{
		Username:  "pp-golden01",
		RequestID: "req-0123456789abcdef",
		Requester: "alice@example.com",
		ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Admin:     true,
		SealKey:   fixedSealKey(),
	}
}

func windowsGenerated(t testing.TB) map[string]string {
	t.Helper()
	prov, err := ProvisionWindows(fixedWindowsGrant())
	if err != nil {
		t.Fatal(err)
	}
	ext, err := ExtendWindows("pp-golden01", time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := RevokeWindows("pp-golden01")
	if err != nil {
		t.Fatal(err)
	}
	chk, err := CheckWindows("pp-golden01", "req-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	col, err := CollectWindows("pp-golden01", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"provision": prov, "extend": ext, "revoke": rev, "check": chk,
		"inventory": InventoryWindows(), "sweep": SweepWindows(), "collect": col,
	}
}

func TestWindowsGolden(t *testing.T) {
	for name, got := range windowsGenerated(t) {
		path := filepath.Join("testdata", "windows-"+name+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s program differs from %s; review the change and run go test -update", name, path)
		}
	}
}

const winDataLine = 3 // the $PassportData line's number

func TestWindowsOnlyTheDataLineVaries(t *testing.T) {
	k := testSealKey(t)
	other := WindowsGrant{Username: "pp-z", RequestID: "r2", Requester: "bob", ExpiresAt: time.Unix(1700000000, 0), SealKey: &k.PublicKey}
	a, _ := ProvisionWindows(fixedWindowsGrant())
	b, err := ProvisionWindows(other)
	if err != nil {
		t.Fatal(err)
	}
	e1, _ := ExtendWindows("pp-a", time.Unix(1700000000, 0))
	e2, _ := ExtendWindows("pp-b", time.Unix(1800000000, 0))
	r1, _ := RevokeWindows("pp-a")
	r2, _ := RevokeWindows("pp-b")
	c1, _ := CheckWindows("pp-a", "r1")
	c2, _ := CheckWindows("pp-b", "r2")
	for _, pair := range [][2]string{{a, b}, {e1, e2}, {r1, r2}, {c1, c2}} {
		if pair[0] == pair[1] {
			t.Fatal("programs for different requests are identical")
		}
		la, lb := strings.Split(pair[0], "\n"), strings.Split(pair[1], "\n")
		if len(la) != len(lb) {
			t.Fatalf("programs have %d and %d lines", len(la), len(lb))
		}
		for i := range la {
			if la[i] != lb[i] && i != winDataLine-1 {
				t.Errorf("line %d differs outside the data line:\n%s\n%s", i+1, la[i], lb[i])
			}
		}
		if !strings.HasPrefix(la[winDataLine-1], "$PassportData = '") {
			t.Errorf("line %d is not the data line", winDataLine)
		}
	}
}

func psSources() map[string]string {
	return map[string]string{
		"lib.ps1": winLibSource, "main.ps1": winMainSource, "provision.ps1": winProvisionSource,
		"extend.ps1": winExtendSource, "revoke.ps1": winRevokeSource, "check.ps1": winCheckSource,
		"inventory.ps1": winInventorySource, "sweep.ps1": winSweepSource,
	}
}

// TestWindowsStaticRules keeps the PowerShell free of constructs that could
// evaluate data as code.
var psForbidden = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)invoke-expression|\biex\b`), "Invoke-Expression"},
	{regexp.MustCompile(`(?i)scriptblock\]::create|newscriptblock`), "script block from text"},
	{regexp.MustCompile(`(?i)add-type`), "Add-Type"},
	{regexp.MustCompile(`(?i)invoke-command|start-process|invoke-item|cmd(\.exe)?\s`), "another command runner"},
	{regexp.MustCompile(`&\s*[\$(]`), "& with a variable or expression"},
	{regexp.MustCompile(`(^|[\s;(|])\.\s+[\$(]`), "dot-sourcing a variable"},
	{regexp.MustCompile("`"), "backtick escapes"},
	{regexp.MustCompile(`"`), "double-quoted (expanding) strings"},
	{regexp.MustCompile(`@"`), "expanding here-strings"},
	{regexp.MustCompile(`(?i)\$ExecutionContext|\.InvokeCommand`), "ExecutionContext"},
}

// psViolations lists the forbidden constructs in one PowerShell source.
// provision.ps1 builds the task's argument with one double-quoted path
// inside a single-quoted string; exactly that is allowed.
func psViolations(name, src string) []string {
	allowed := `'-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "' + $PassportSweepPath + '"'`
	var out []string
	for i, line := range strings.Split(strings.ReplaceAll(src, allowed, ""), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, f := range psForbidden {
			if f.re.MatchString(line) {
				out = append(out, fmt.Sprintf("%s:%d uses %s: %s", name, i+1, f.what, line))
			}
		}
		if strings.Contains(line, "$PassportData") && name != "lib.ps1" {
			out = append(out, fmt.Sprintf("%s:%d reads $PassportData; only Read-PassportData may", name, i+1))
		}
	}
	return out
}

// TestPSViolationsCatches proves the static rules can fail.
func TestPSViolationsCatches(t *testing.T) {
	for _, bad := range []string{
		"Invoke-Expression $x", "iex $x", "[scriptblock]::Create($x)", "Add-Type -TypeDefinition $x",
		"& $cmd", "& ($a + $b)", ". $file", "$x = \"a$b\"", "Write-Host `$x", "cmd.exe /c $x",
		"Start-Process $x", "$ExecutionContext.InvokeCommand.ExpandString($x)", "Get-Item $PassportData",
	} {
		if len(psViolations("body.ps1", bad+"\n")) == 0 {
			t.Errorf("%q is not flagged", bad)
		}
	}
	if v := psViolations("body.ps1", "# iex in a comment\n& quser.exe\n"); len(v) != 0 {
		t.Errorf("clean source flagged: %v", v)
	}
}

func TestWindowsStaticRules(t *testing.T) {
	for name, src := range psSources() {
		for _, v := range psViolations(name, src) {
			t.Error(v)
		}
	}
	// In lib.ps1, $PassportData appears only inside Read-PassportData.
	code := func(src string) string {
		var b strings.Builder
		for _, l := range strings.Split(src, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "#") {
				b.WriteString(l + "\n")
			}
		}
		return b.String()
	}
	fn := winLibSource[strings.Index(winLibSource, "function Read-PassportData"):]
	fn = fn[:strings.Index(fn, "\n}\n")]
	if n, m := strings.Count(code(winLibSource), "$PassportData"), strings.Count(code(fn), "$PassportData"); n != m || m == 0 {
		t.Errorf("$PassportData appears %d times in lib.ps1, %d of them in Read-PassportData", n, m)
	}
	for _, want := range []string{"Set-StrictMode -Version 3.0\n", "$ErrorActionPreference = 'Stop'\n"} {
		if !strings.Contains(winLibSource, want) {
			t.Errorf("lib.ps1 lacks %q", want)
		}
	}
	for action, p := range windowsGenerated(t) {
		if !strings.HasSuffix(p, "exit $script:ExitCode\n") || !strings.Contains(p[strings.LastIndex(p, "finally"):], "Write-PassportResult 'error'") {
			t.Errorf("%s program does not end in the footer that always prints a result", action)
		}
		if !strings.Contains(p, "Write-PassportResult 'ok'") {
			t.Errorf("%s program never prints an ok result", action)
		}
		lines := strings.Split(p, "\n")
		if lines[winDataLine-1] != "$PassportData = '"+strings.TrimSuffix(strings.TrimPrefix(lines[winDataLine-1], "$PassportData = '"), "'")+"'" {
			t.Errorf("%s: line %d is not the data line", action, winDataLine)
		}
	}
	if !strings.Contains(winLibSource, "$PassportAlphabet = '"+winpass.Alphabet+"'\n") {
		t.Error("lib.ps1 does not carry winpass.Alphabet verbatim")
	}
}

// TestWindowsPatternsMatchGo keeps lib.ps1's patterns and exit codes equal to Go's.
func TestWindowsPatternsMatchGo(t *testing.T) {
	for name, re := range map[string]*regexp.Regexp{
		"ReUser": reUsername, "ReRequest": reRequestID, "ReRequester": reRequester,
		"ReEpoch": reEpoch, "ReBool": reBool, "ReSealN": reSealN, "ReSealE": reSealE,
	} {
		m := regexp.MustCompile(`(?m)^\$` + name + ` = '([^']*)'$`).FindStringSubmatch(winLibSource)
		if m == nil {
			t.Errorf("lib.ps1 has no $%s", name)
			continue
		}
		if got := "^(?:" + m[1] + ")$"; got != re.String() {
			t.Errorf("$%s is %q in lib.ps1 but %q in Go", name, got, re.String())
		}
	}
	for name, code := range map[string]int{"ExFailed": ExitFailed, "ExData": ExitData, "ExHost": ExitHost,
		"ExConflict": ExitConflict, "ExNotFound": ExitNotFound, "ExPassword": ExitPassword} {
		want := "$" + name + " = " + string(rune('0'+code)) + " "
		if !strings.Contains(winLibSource, want) {
			t.Errorf("lib.ps1 lacks %q", want)
		}
	}
}

var psHostile = []string{
	"a`b", "$(calc)", "a;b", "a'b", `a"b`, "@'", "'@", "@\"", "a\nb", "a\r\nb", "a\u2018b", "a\u201cb", "a\u2019b",
	"x$env:PATH", "a b", "a|b", "a&b", "a\x00b",
}

func TestWindowsGoRefusesHostileFields(t *testing.T) {
	k := testSealKey(t)
	for _, h := range psHostile {
		for _, c := range []struct {
			field string
			run   func() (string, error)
		}{
			{"Username", func() (string, error) { g := fixedWindowsGrant(); g.Username = "pp" + h; return ProvisionWindows(g) }},
			{"RequestID", func() (string, error) { g := fixedWindowsGrant(); g.RequestID = "r" + h; return ProvisionWindows(g) }},
			{"Requester", func() (string, error) { g := fixedWindowsGrant(); g.Requester = "q" + h; return ProvisionWindows(g) }},
			{"Username", func() (string, error) { return ExtendWindows("pp"+h, time.Unix(1e9, 0)) }},
			{"Username", func() (string, error) { return RevokeWindows("pp" + h) }},
			{"Username", func() (string, error) { return CheckWindows("pp"+h, "r") }},
			{"RequestID", func() (string, error) { return CheckWindows("pp", "r"+h) }},
			{"Username", func() (string, error) { return CollectWindows("pp"+h, time.Unix(1e9, 0)) }},
		} {
			out, err := c.run()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || out != "" {
				t.Errorf("%s %q: got %v, want a FieldError naming %s", c.field, h, err, c.field)
			}
		}
	}
	for _, c := range []struct {
		key  *rsa.PublicKey
		want string
	}{
		{nil, "SealKey"},
		{&rsa.PublicKey{N: big.NewInt(0).Lsh(big.NewInt(1), 2047), E: 65537}, "SealKey"},
		{&rsa.PublicKey{N: k.N, E: 3}, "SealKey"},
	} {
		g := fixedWindowsGrant()
		g.SealKey = c.key
		_, err := ProvisionWindows(g)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.want {
			t.Errorf("seal key %v: got %v", c.key, err)
		}
	}
	g := fixedWindowsGrant()
	g.ExpiresAt = time.Time{}
	if _, err := ProvisionWindows(g); err == nil {
		t.Error("zero expiry accepted")
	}
	var fe *FieldError
	if _, err := CollectWindows("pp", time.Time{}); !errors.As(err, &fe) || fe.Field != "Since" {
		t.Errorf("collect since the zero time: got %v, want a FieldError naming Since", err)
	}
}

// TestWindowsValidInputIsInert: whatever passes validation appears only
// inside the base64 data line.
func TestWindowsValidInputIsInert(t *testing.T) {
	g := fixedWindowsGrant()
	g.Username = "zq-inert-user"
	g.Requester = "inert+mark@x.example:1"
	g.RequestID = "inert.req_9-Z"
	p, err := ProvisionWindows(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{g.Username, g.Requester, g.RequestID} {
		if strings.Contains(p, v) {
			t.Errorf("%q appears in the program outside the data block", v)
		}
	}
}

func TestReadWindowsProgram(t *testing.T) {
	progs := windowsGenerated(t)
	for action, p := range progs {
		got, fields, err := ReadWindowsProgram(p)
		if err != nil || got != action || fields["action"] != action {
			t.Errorf("%s: got %q %v %v", action, got, fields, err)
		}
	}
	_, f, _ := ReadWindowsProgram(progs["provision"])
	if f["user"] != "pp-golden01" || f["admin"] != "1" || f["expires"] != "1893553445" || f["seal_e"] != "AQAB" || len(f["seal_n"]) != 512 {
		t.Errorf("provision fields: %v", f)
	}
	linux, _ := Revoke(Revocation{Username: "pp-a"})
	prov := progs["provision"]
	dataStart := strings.Index(prov, "$PassportData = '") + len("$PassportData = '")
	dataEnd := dataStart + strings.IndexByte(prov[dataStart:], '\'')
	swap := func(p, data string) string { return p[:dataStart] + data + p[dataEnd:] }
	rawData := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	oldData := prov[dataStart:dataEnd]
	decoded, _ := base64.StdEncoding.DecodeString(oldData)
	bodyByte := strings.Index(prov, "Invoke-PassportAction")
	for name, src := range map[string]string{
		"one byte of the body": prov[:bodyByte] + "X" + prov[bodyByte+1:],
		"trailing text":        prov + "Remove-Item C:\\\n",
		"leading text":         "Write-Host hi\n" + prov,
		"a Linux program":      linux,
		"empty":                "",
		"data with a quote":    swap(prov, oldData[:10]+"'"+oldData[10:]),
		"data not base64":      swap(prov, "!!!!"),
		"no data":              swap(prov, ""),
		"bad username":         swap(prov, rawData(strings.Replace(string(decoded), "user=pp-golden01", "user=PP;x", 1))),
		"bad admin":            swap(prov, rawData(strings.Replace(string(decoded), "admin=1", "admin=2", 1))),
		"extra field":          swap(prov, rawData(string(decoded)+"x=1\n")),
		"wrong action in data": swap(prov, rawData(strings.Replace(string(decoded), "action=provision", "action=revoke", 1))),
		"small modulus":        swap(prov, rawData(strings.Replace(string(decoded), "seal_n=", "seal_n=AAAA", 1)[:len(decoded)])),
		"format 2":             swap(prov, rawData(strings.Replace(string(decoded), "format=1", "format=2", 1))),
		"data on a sweep":      strings.Replace(progs["sweep"], "$PassportData = ''", "$PassportData = '"+oldData+"'", 1),
		"data line shape":      strings.Replace(prov, "$PassportData = '", "$PassportData  = '", 1),
		"CRLF line endings":    strings.ReplaceAll(prov, "\n", "\r\n"),
		"two data lines":       strings.Replace(prov, "$PassportData = '", "$PassportData = 'QQ=='\n$PassportData = '", 1),
	} {
		if _, _, err := ReadWindowsProgram(src); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOpenPassword(t *testing.T) {
	k := testSealKey(t)
	seal := func(pw string, pub *rsa.PublicKey) string {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte(pw), nil)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(ct)
	}
	result := func(field string) Result {
		return Result{Action: "provision", OK: true, User: "pp-a", Fields: map[string]string{"password": field}}
	}
	pw, err := winpass.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(pw, &k.PublicKey)
	parsed, err := ParseResult("passport-result action=provision status=ok user=pp-a changed=user password=" + sealed + "\n")
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenPassword(k, parsed)
	if err != nil || got != pw {
		t.Fatalf("round trip: %v", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	weak := "Abcdefghijkmnpqrstuvwx2345" // no symbol
	for name, c := range map[string]struct {
		key *rsa.PrivateKey
		r   Result
	}{
		"wrong key":        {other, result(sealed)},
		"truncated":        {k, result(sealed[:len(sealed)-8])},
		"bad base64":       {k, result(sealed[:20] + "+" + sealed[21:])},
		"padded":           {k, result(sealed + "==")},
		"fails winpass":    {k, result(seal(weak, &k.PublicKey))},
		"holds the user":   {k, result(seal("Abc2!pp-aXXXXXXXXXXXXXXXXXXXX", &k.PublicKey))},
		"no password":      {k, result("")},
		"not provision":    {k, Result{Action: "extend", OK: true, User: "pp-a", Fields: map[string]string{"password": sealed}}},
		"failed provision": {k, Result{Action: "provision", Code: 3, User: "pp-a", Fields: map[string]string{"password": sealed}}},
		"no key":           {nil, result(sealed)},
	} {
		got, err := OpenPassword(c.key, c.r)
		if err == nil {
			t.Errorf("%s: accepted (%d chars)", name, len(got))
			continue
		}
		for _, secret := range []string{pw, weak, sealed[:16]} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error leaks a secret: %v", name, err)
			}
		}
	}
}

func TestExitPasswordMeaning(t *testing.T) {
	err := (&Error{Action: "provision", Step: "user", Code: ExitPassword}).Error()
	if !strings.Contains(err, "password policy") {
		t.Errorf("exit 9 reads %q", err)
	}
}

func TestWindowsResultsParse(t *testing.T) {
	r, err := ParseResult("passport-result action=check status=ok user=pp-a account=passport record=this expires=1893553445\n")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePresence(r)
	if err != nil || !p.Present() {
		t.Errorf("check: %+v %v", p, err)
	}
	r, err = ParseResult("passport-result action=inventory status=ok count=2 accounts=pp-a:1893553445:live,pp-b:none:norecord truncated=no\n")
	if err != nil || len(r.Inventory) != 2 || r.Inventory[1].HasRecord {
		t.Errorf("inventory: %+v %v", r, err)
	}
	r, err = ParseResult("passport-result action=provision status=error code=9 step=user\n")
	if err != nil || r.Code != ExitPassword || r.Step != "user" {
		t.Errorf("error result: %+v %v", r, err)
	}
}

func FuzzReadWindowsProgram(f *testing.F) {
	for _, p := range windowsGenerated(f) {
		f.Add(p)
	}
	f.Add("")
	f.Add("$PassportData = 'QQ=='\n")
	f.Fuzz(func(t *testing.T, src string) {
		action, fields, err := ReadWindowsProgram(src)
		if err != nil {
			return
		}
		// Anything accepted must be exactly what the API builds from its fields.
		var again string
		switch action {
		case "inventory":
			again = InventoryWindows()
		case "sweep":
			again = SweepWindows()
		case "extend":
			again, err = ExtendWindows(fields["user"], unix(t, fields["expires"]))
		case "revoke":
			again, err = RevokeWindows(fields["user"])
		case "check":
			again, err = CheckWindows(fields["user"], fields["request"])
		case "collect":
			again, err = CollectWindows(fields["user"], unix(t, fields["since"]))
		case "provision":
			n, _ := base64.RawURLEncoding.DecodeString(fields["seal_n"])
			again, err = ProvisionWindows(WindowsGrant{Username: fields["user"], RequestID: fields["request"], Requester: fields["requester"],
				ExpiresAt: unix(t, fields["expires"]), Admin: fields["admin"] == "1", SealKey: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}})
		}
		if err != nil || again != src {
			t.Fatalf("accepted a %s program the API would not build: %v", action, err)
		}
	})
}

func unix(t *testing.T, s string) time.Time {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("bad epoch %q", s)
	}
	return time.Unix(n.Int64(), 0)
}

func FuzzOpenPassword(f *testing.F) {
	k := testSealKey(f)
	f.Add("passport-result action=provision status=ok user=pp-a changed=user password=AAAA")
	f.Add("passport-result action=provision status=ok user=pp-a password=" + strings.Repeat("A", 512))
	f.Add("passport-result action=provision status=error code=9 step=user")
	f.Fuzz(func(t *testing.T, out string) {
		r, err := ParseResult(out)
		if err != nil {
			return
		}
		pw, err := OpenPassword(k, r)
		if err == nil {
			if winpass.Check(pw, r.User) != nil {
				t.Fatal("OpenPassword returned a password winpass.Check refuses")
			}
			return
		}
		if sealed := r.Fields["password"]; len(sealed) > 8 && strings.Contains(err.Error(), sealed) {
			t.Fatal("error contains the ciphertext")
		}
	})
}
