package winhost

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

type eventLine struct {
	Time        string `json:"time"`
	EventID     int    `json:"event_id"`
	LogonID     string `json:"logon_id"`
	LogonType   int    `json:"logon_type"`
	Source      string `json:"source"`
	Process     string `json:"process"`
	CommandLine string `json:"command_line"`
}

// collectEvents runs the shipped collect program and reads its lines; the
// result line is on stderr, stdout holds only events.
func collectEvents(t *testing.T, h *Host, user string, since time.Time) (hostscript.Result, []eventLine) {
	t.Helper()
	res := runScript(t, h, PowerShellDocument, mustScript(t)(hostscript.CollectWindows(user, since)))
	r, err := hostscript.ParseResult(string(res.Stderr))
	if err != nil || !r.OK || res.ExitCode != 0 {
		t.Fatalf("collect: %v, exit %d, stderr %q", err, res.ExitCode, res.Stderr)
	}
	var lines []eventLine
	sc := bufio.NewScanner(strings.NewReader(string(res.Stdout)))
	for sc.Scan() {
		var l eventLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("stdout line %q is not an event: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return r, lines
}

// TestCollectHandsOverTheUsersEvents: a logon through the logon check, a
// program started in it and revoke's logoff come back from the shipped
// collect program as 4624, 4688 and 4634 of one logon id; another user's
// and older events do not.
func TestCollectHandsOverTheUsersEvents(t *testing.T) {
	h, clk := newHost(t, Config{})
	ctx := context.Background()
	pw := provision(t, h, "pp-eve", "ar-5", testStart.Add(time.Hour), false)
	other := provision(t, h, "pp-fay", "ar-6", testStart.Add(time.Hour), false)
	if err := h.StartProcess("pp-eve", `C:\Windows\System32\cmd.exe`, "cmd"); err == nil {
		t.Error("a process started without a logon")
	}
	if err := Logon(ctx, h.RDPAddr(), "pp-fay", other); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := Logon(ctx, h.RDPAddr(), "pp-eve", pw); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	const cmdline = `powershell.exe -Command "Get-Content C:\secrets\payroll.csv"`
	if err := h.StartProcess("pp-eve", `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, cmdline); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if r, _ := runProgram(t, h, mustScript(t)(hostscript.RevokeWindows("pp-eve"))); !r.OK {
		t.Fatalf("revoke: %+v", r)
	}

	r, lines := collectEvents(t, h, "pp-eve", testStart)
	if r.Fields["events"] != "3" || r.Fields["sessions"] != "1" || len(lines) != 3 {
		t.Fatalf("collect: result %v, lines %+v; want 3 events of one logon", r.Fields, lines)
	}
	logon, proc, logoff := lines[0], lines[1], lines[2]
	if logon.EventID != EventLogon || logon.LogonType != 10 || net.ParseIP(logon.Source) == nil || !net.ParseIP(logon.Source).IsLoopback() {
		t.Errorf("logon event: %+v", logon)
	}
	if proc.EventID != EventProcessCreation || proc.CommandLine != cmdline || !strings.HasSuffix(proc.Process, `\powershell.exe`) {
		t.Errorf("process event: %+v", proc)
	}
	if logoff.EventID != EventLogoff {
		t.Errorf("logoff event: %+v", logoff)
	}
	if logon.LogonID != proc.LogonID || logon.LogonID != logoff.LogonID || !strings.HasPrefix(logon.LogonID, "0x") {
		t.Errorf("logon ids differ: %s %s %s", logon.LogonID, proc.LogonID, logoff.LogonID)
	}
	if want := testStart.Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000Z"); logon.Time != want {
		t.Errorf("logon time %s, want %s", logon.Time, want)
	}

	if r, lines := collectEvents(t, h, "pp-eve", testStart.Add(2*time.Minute)); r.Fields["events"] != "2" || len(lines) != 2 || lines[0].EventID != EventProcessCreation {
		t.Errorf("collect since the process started: %v %+v", r.Fields, lines)
	}
	if r, lines := collectEvents(t, h, "pp-gus", testStart); r.Fields["events"] != "0" || len(lines) != 0 {
		t.Errorf("a user with no events: %v %+v", r.Fields, lines)
	}
}

// TestCollectRefusesBadData: a collect program whose data line the host
// would refuse changes nothing and prints no events.
func TestCollectRefusesBadData(t *testing.T) {
	h, _ := newHost(t, Config{})
	good := mustScript(t)(hostscript.CollectWindows("pp-eve", testStart))
	start := strings.Index(good, "$PassportData = '") + len("$PassportData = '")
	end := start + strings.IndexByte(good[start:], '\'')
	for name, data := range map[string]string{
		"user with a quote":  "format=1\naction=collect\nuser=pp'eve\nsince=1\n",
		"since not a number": "format=1\naction=collect\nuser=pp-eve\nsince=-1\n",
		"missing since":      "format=1\naction=collect\nuser=pp-eve\n",
		"another action":     "format=1\naction=revoke\nuser=pp-eve\nsince=1\n",
	} {
		t.Run(name, func(t *testing.T) {
			src := good[:start] + base64.StdEncoding.EncodeToString([]byte(data)) + good[end:]
			res := runScript(t, h, PowerShellDocument, src)
			if res.ExitCode != hostscript.ExitData || len(res.Stdout) != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and no events", res.ExitCode, res.Stdout, res.Stderr, hostscript.ExitData)
			}
		})
	}
}
