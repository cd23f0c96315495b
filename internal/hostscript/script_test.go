package hostscript

import (
	"encoding/base64"
	"errors"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dataLine is the script's only input-dependent line.
var dataLine = regexp.MustCompile(`(?m)^PASSPORT_DATA='([A-Za-z0-9+/=]*)'$`)

// dataLineNumber is where program() puts the data line (1-based).
const dataLineNumber = 5

// decodeData returns the decoded data block of a generated script.
func decodeData(t testing.TB, script string) string {
	t.Helper()
	lines := strings.SplitN(script, "\n", dataLineNumber+1)
	m := dataLine.FindStringSubmatch(lines[dataLineNumber-1])
	if m == nil {
		t.Fatalf("line %d of the script is not the data line: %q", dataLineNumber, lines[dataLineNumber-1])
	}
	b, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDataBlockCarriesTheFields(t *testing.T) {
	got := decodeData(t, generated(t)["provision"])
	want := "format=1\naction=provision\nuser=pp-golden01\nrequest=req-0123456789abcdef\n" +
		"requester=alice@example.com\nexpires=1893553445\nserial=1234567890123456789\nsudo=1\nrecord=1\n" +
		"ca_type=ssh-ed25519\nca_key=" + strings.Fields(fixedCA)[1] + "\n"
	if got != want {
		t.Errorf("provision data block:\n%s\nwant:\n%s", got, want)
	}
	if got := decodeData(t, Sweep()); got != "" {
		t.Errorf("sweep carries data %q; it must read only grant records", got)
	}
}

// TestOnlyTheDataLineVaries: scripts for different requests are the same
// program; nothing of a request reaches the shell source.
func TestOnlyTheDataLineVaries(t *testing.T) {
	other := Grant{
		Username: "pp-z", RequestID: "r2", Requester: "bob", CAPublicKey: testCA(t),
		ExpiresAt: time.Unix(1700000000, 0), Serial: 7,
	}
	a, err := Provision(fixedGrant())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Provision(other)
	if err != nil {
		t.Fatal(err)
	}
	e1, _ := Extend("pp-a", time.Unix(1700000000, 0))
	e2, _ := Extend("pp-b", time.Unix(1800000000, 0))
	r1, _ := Revoke(Revocation{Username: "pp-a", Serial: 1, CAPublicKey: fixedCA})
	r2, _ := Revoke(Revocation{Username: "pp-b"})
	for _, pair := range [][2]string{{a, b}, {e1, e2}, {r1, r2}} {
		la, lb := strings.Split(pair[0], "\n"), strings.Split(pair[1], "\n")
		if len(la) != len(lb) {
			t.Fatalf("scripts have %d and %d lines", len(la), len(lb))
		}
		for i := range la {
			if la[i] != lb[i] && i != dataLineNumber-1 {
				t.Errorf("line %d differs outside the data line:\n%s\n%s", i+1, la[i], lb[i])
			}
		}
		if !strings.HasPrefix(la[dataLineNumber-1], "PASSPORT_DATA=") {
			t.Errorf("line %d is not the data line", dataLineNumber)
		}
	}
}

// TestLibraryMatchesGo keeps the host's patterns and exit codes identical to
// the Go side's: the two checks are one rule applied twice.
func TestLibraryMatchesGo(t *testing.T) {
	assign := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=(\S+)`).FindStringSubmatch(libSource)
		if m == nil {
			t.Fatalf("programs/lib.sh does not define %s", name)
		}
		return strings.Trim(m[1], "'")
	}
	for name, re := range map[string]*regexp.Regexp{
		"RE_USER": reUsername, "RE_REQUEST": reRequestID, "RE_REQUESTER": reRequester,
	} {
		want := strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$")
		if got := assign(name); got != want {
			t.Errorf("lib.sh %s = %q, Go has %q", name, got, want)
		}
	}
	if got, want := assign("RE_CA_TYPE"), strings.Join(caKeyTypes, "|"); got != want {
		t.Errorf("lib.sh RE_CA_TYPE = %q, Go has %q", got, want)
	}
	if got := assign("RE_EPOCH"); got != "[1-9][0-9]{0,"+strconv.Itoa(len(strconv.Itoa(maxExpiry))-1)+"}" {
		t.Errorf("lib.sh RE_EPOCH = %q does not match maxExpiry %d", got, maxExpiry)
	}
	if got := assign("CA_KEY_MAX"); got != strconv.Itoa(maxCAKeyBase64) {
		t.Errorf("lib.sh CA_KEY_MAX = %s, Go has %d", got, maxCAKeyBase64)
	}
	for name, code := range map[string]int{
		"EX_FAILED": ExitFailed, "EX_DATA": ExitData, "EX_HOST": ExitHost, "EX_CONFLICT": ExitConflict,
		"EX_NOTFOUND": ExitNotFound, "EX_SSHD": ExitSSHD, "EX_SUDOERS": ExitSudoers, "EX_LOCK": ExitLock,
		"EX_UID": ExitUID, "EX_RECORDING": ExitRecording,
	} {
		if got := assign(name); got != strconv.Itoa(code) {
			t.Errorf("lib.sh %s = %s, Go has %d", name, got, code)
		}
	}
}

// TestLayoutMatchesGo: the paths Go exports are the ones the programs use.
func TestLayoutMatchesGo(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = strings.NewReader(libSource + `done_result=1
printf '%s\n' "$PP_GRANTS" "$PP_PRINCIPALS" "$PP_KRL" "$PP_SWEEP" "$SSHD_DROPIN" "$SUDOERS_DIR/passport-" "$PP_GROUP" "$PP_LOCK" "$PP_SESSION" "$PP_RECORDINGS" "$PP_RECORD" "$PP_RECORDER_SUDOERS"
`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{GrantsDir, PrincipalsDir, RevokedKeys, SweepPath, SSHDDropIn, SudoersPrefix, PassportGroup, LockFile, SessionPath, RecordingsDir, RecordPath, RecorderRules}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("lib.sh's layout:\n%s\nGo's constants:\n%s", out, want)
	}
	if !strings.Contains(recordSource, "\nexec sudo -n -u \"$user\" -- "+SessionPath+" ") {
		t.Errorf("the record program does not run %s", SessionPath)
	}
}

func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	scripts := generated(t)
	rsa, err := Provision(Grant{Username: "pp-r", RequestID: "r", Requester: "x", CAPublicKey: testCA(t), ExpiresAt: time.Unix(2e9, 0), Serial: 1})
	if err != nil {
		t.Fatal(err)
	}
	scripts["provision-no-sudo"] = rsa
	scripts["session"] = "#!/bin/sh\n" + shipped(sessionSource)
	scripts["record"] = "#!/bin/sh\n" + shipped(recordSource)
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("shellcheck", "-s", "sh", "-")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("shellcheck -s sh: %v\n%s", err, out)
			}
		})
	}
}

// TestScriptSize: Run Command carries the script as a document parameter;
// keep well inside what it accepts.
func TestScriptSize(t *testing.T) {
	for name, script := range generated(t) {
		if len(script) > 48<<10 {
			t.Errorf("%s is %d bytes; keep scripts under 48 KiB", name, len(script))
		}
	}
	if strings.Contains(sessionSource+recordSource, recorderDelim) {
		t.Errorf("the recorder's programs contain their here-document delimiter %q", recorderDelim)
	}
	if strings.Contains(Sweep(), sweepDelimiter) {
		t.Errorf("the sweep program contains its own here-document delimiter %q", sweepDelimiter)
	}
}

func TestParseResult(t *testing.T) {
	tests := []struct {
		name, stdout string
		want         Result
		wantErr      bool
	}{
		{
			name:   "provision ok",
			stdout: "noise\npassport-result action=provision status=ok user=pp-a changed=user,principals sshd=dropin\n",
			want:   Result{Action: "provision", OK: true, User: "pp-a", Changed: []string{"user", "principals"}},
		},
		{
			name:   "nothing changed",
			stdout: "passport-result action=provision status=ok user=pp-a changed=none",
			want:   Result{Action: "provision", OK: true, User: "pp-a"},
		},
		{
			name:   "failure",
			stdout: "passport-result action=revoke status=error code=4 step=remove-user\n",
			want:   Result{Action: "revoke", Code: ExitConflict, Step: "remove-user"},
		},
		{
			name:   "sweep",
			stdout: "passport-result action=sweep status=ok removed=2 users=pp-a,pp-b kept=1 failed=0\n",
			want:   Result{Action: "sweep", OK: true, Removed: []string{"pp-a", "pp-b"}},
		},
		{
			name:   "inventory",
			stdout: "passport-result action=inventory status=ok count=3 accounts=pp-a:1893553445:live,pp-b:none:norecord,pp-c:1700000000:nouser truncated=no\n",
			want: Result{Action: "inventory", OK: true, Inventory: []HostUser{
				{Username: "pp-a", ExpiresAt: time.Unix(1893553445, 0), HasUser: true, HasRecord: true},
				{Username: "pp-b", HasUser: true},
				{Username: "pp-c", ExpiresAt: time.Unix(1700000000, 0), HasRecord: true},
			}},
		},
		{name: "inventory entry with a bad name", stdout: "passport-result action=inventory status=ok accounts=ROOT:1:live", wantErr: true},
		{name: "inventory entry with a bad state", stdout: "passport-result action=inventory status=ok accounts=pp-a:1:maybe", wantErr: true},
		{name: "inventory entry with a bad expiry", stdout: "passport-result action=inventory status=ok accounts=pp-a:x:live", wantErr: true},
		{name: "empty", stdout: "", wantErr: true},
		{name: "truncated before the line", stdout: "passport-res", wantErr: true},
		{name: "no status", stdout: "passport-result action=sweep", wantErr: true},
		{name: "error without code", stdout: "passport-result action=sweep status=error", wantErr: true},
		{name: "hostile token", stdout: "passport-result action=sweep status=ok user=$(id)", wantErr: true},
		{name: "no action", stdout: "passport-result status=ok", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResult(tt.stdout)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseResult(%q) = %+v, want an error", tt.stdout, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Fields = nil
			if !equalResult(got, tt.want) {
				t.Errorf("ParseResult(%q) = %+v, want %+v", tt.stdout, got, tt.want)
			}
		})
	}
}

func TestResultErr(t *testing.T) {
	ok, _ := ParseResult("passport-result action=extend status=ok user=pp-a")
	if ok.Err() != nil {
		t.Errorf("a successful result has error %v", ok.Err())
	}
	bad, _ := ParseResult("passport-result action=provision status=error code=6 step=sshd-verify")
	var e *Error
	if !errors.As(bad.Err(), &e) || e.Code != ExitSSHD {
		t.Fatalf("Err() = %v, want an *Error with code %d", bad.Err(), ExitSSHD)
	}
	for _, want := range []string{"provision", "sshd-verify", "exit 6", "sshd_config"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q does not mention %q", e.Error(), want)
		}
	}
	for code := ExitFailed; code <= ExitLock; code++ {
		if _, ok := exitMeanings[code]; !ok {
			t.Errorf("exit code %d has no meaning", code)
		}
	}
}

func equalResult(a, b Result) bool {
	return a.Action == b.Action && a.OK == b.OK && a.Code == b.Code && a.Step == b.Step && a.User == b.User &&
		strings.Join(a.Changed, ",") == strings.Join(b.Changed, ",") && strings.Join(a.Removed, ",") == strings.Join(b.Removed, ",") &&
		reflect.DeepEqual(a.Inventory, b.Inventory)
}

func FuzzParseResult(f *testing.F) {
	f.Add("passport-result action=provision status=ok user=pp-a changed=user")
	f.Add("passport-result action=revoke status=error code=4 step=remove-user")
	f.Add("x\npassport-result  status=ok action=sweep users=a,,b")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseResult(s)
		if err == nil && (r.Action == "" || (!r.OK && r.Code <= 0)) {
			t.Errorf("ParseResult(%q) accepted an incomplete result %+v", s, r)
		}
	})
}
