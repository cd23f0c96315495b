package access

import (
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

func TestReadRun(t *testing.T) {
	const user = "pp-abc"
	tests := []struct {
		name          string
		r             fleet.Result
		ok, untouched bool
	}{
		{"success", fleet.Result{Outcome: fleet.Success, Stdout: "passport-result action=provision status=ok user=pp-abc\n"}, true, false},
		{"success without result line", fleet.Result{Outcome: fleet.Success, Stdout: "done\n"}, false, false},
		{"another program's result", fleet.Result{Outcome: fleet.Success, Stdout: "passport-result action=revoke status=ok user=pp-abc\n"}, false, false},
		{"another user's result", fleet.Result{Outcome: fleet.Success, Stdout: "passport-result action=provision status=ok user=pp-xyz\n"}, false, false},
		{"failed mid-way", fleet.Result{Outcome: fleet.Failed, ExitCode: hostscript.ExitHost, Reason: "i-1: the script exited 3"}, false, false},
		{"data refused", fleet.Result{Outcome: fleet.Failed, ExitCode: hostscript.ExitData, Reason: "i-1: the script exited 2"}, false, true},
		{"name taken", fleet.Result{Outcome: fleet.Failed, ExitCode: hostscript.ExitConflict}, false, true},
		{"timed out", fleet.Result{Outcome: fleet.TimedOut, ExitCode: -1, Reason: "i-1: still running"}, false, false},
		{"offline", fleet.Result{Outcome: fleet.Offline, ExitCode: -1, Reason: "i-1: offline"}, false, true},
		{"unknown", fleet.Result{Outcome: fleet.UnknownInstance, ExitCode: -1}, false, true},
		{"never delivered", fleet.Result{Outcome: fleet.DeliveryTimedOut, ExitCode: -1}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.InstanceID = "i-1"
			h := readRun("provision", user, tt.r)
			if h.ok != tt.ok || h.untouched() != tt.untouched {
				t.Errorf("ok %v untouched %v; want %v %v", h.ok, h.untouched(), tt.ok, tt.untouched)
			}
			if !h.ok && (h.why == "" || h.why[:4] != "i-1:") {
				t.Errorf("a failure's reason %q does not start with the host", h.why)
			}
		})
	}
}

// FuzzReadRun: whatever a host prints, it counts as a success only with a
// successful result line for the program and user that were sent.
func FuzzReadRun(f *testing.F) {
	f.Add("passport-result action=provision status=ok user=pp-abc\n")
	f.Add("passport-result action=provision status=ok\n")
	f.Add("passport-result action=provision status=ok user=pp-abc\npassport-result action=provision status=error code=1\n")
	f.Fuzz(func(t *testing.T, stdout string) {
		h := readRun("provision", "pp-abc", fleet.Result{InstanceID: "i-1", Outcome: fleet.Success, Stdout: stdout})
		if !h.ok {
			if h.why == "" {
				t.Error("a failure without a reason")
			}
			return
		}
		res, err := hostscript.ParseResult(stdout)
		if err != nil || res.Action != "provision" || !res.OK || (res.User != "" && res.User != "pp-abc") {
			t.Errorf("output %q counted as a successful provision of pp-abc (%+v, %v)", stdout, res, err)
		}
	})
}
