package access

import (
	"context"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

var _ RecordingPolicy = (*policy.Gate)(nil)

// staticTags is a TagSource of fixed tags.
type staticTags map[string]map[string]string

func (s staticTags) Tags(_ context.Context, ids []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, id := range ids {
		out[id] = s[id]
	}
	return out, nil
}

// TestPolicyDecidesWhereRecordingIsRequired: on a host that cannot record,
// a grant to a target whose policy requires recording is refused there
// with nothing changed (fail closed), and one whose policy lets it stand
// is granted with a loud not-recorded event (fail open); once the host
// can record, the strict target is granted and recorded.
func TestPolicyDecidesWhereRecordingIsRequired(t *testing.T) {
	l := startLab(t, 2, 0)
	prod, stage := l.Hosts[0], l.Hosts[1]
	prodID, stageID := prod.Info().InstanceID, stage.Info().InstanceID
	p, err := policy.Parse("file:///record.cedar", []byte(`
permit (principal, action == Passport::Action::"access", resource);

@id("record-production")
permit (principal, action == Passport::Action::"record", resource)
when { resource.hasTag("env") && resource.getTag("env") == "production" };

@id("record-staging")
@if_cannot_record("grant")
permit (principal, action == Passport::Action::"record", resource)
when { resource.hasTag("env") && resource.getTag("env") == "staging" };
`))
	if err != nil {
		t.Fatal(err)
	}
	svc, led := withLedger(t, l)
	svc.authz = &policy.Gate{Policy: p, Tags: staticTags{prodID: {"env": "production"}, stageID: {"env": "staging"}}}
	for _, h := range l.Hosts {
		onHost(t, h, "mv /usr/bin/sudo /usr/bin/sudo.away")
	}
	ctx := context.Background()
	ca := newCA(t)

	_, err = svc.Grant(ctx, request(ca, prodID))
	if err == nil || !strings.Contains(err.Error(), "policy requires recording here") || !strings.Contains(err.Error(), "record-production") {
		t.Fatalf("a grant to a production host that cannot record: %v; want it refused, naming the policy", err)
	}
	if users := passportUsers(t, prod); users != "" {
		t.Errorf("the refused host holds Passport users: %q", users)
	}

	g := grant(t, svc, request(ca, stageID))
	events, _ := led.Events(ctx, ledger.Filter{GrantID: g.ID})
	var loud *ledger.Event
	for i := range events {
		if events[i].Action == ledger.ActionRecordingNotRecorded {
			loud = &events[i]
		}
	}
	if loud == nil || loud.Target != stageID || !strings.Contains(loud.Detail, "NOT recorded") || !strings.Contains(loud.Detail, "record-staging") {
		t.Errorf("granting on a staging host that cannot record left no not-recorded event: %+v", events)
	}
	mustLogIn(t, stage, g.Username, credentialOf(t, g, nil).signer)

	onHost(t, prod, "mv /usr/bin/sudo.away /usr/bin/sudo")
	g = grant(t, svc, request(ca, prodID))
	if out, err := login(t, prod, g.Username, credentialOf(t, g, nil).signer, "echo on-the-record"); err != nil || out != "on-the-record" {
		t.Fatalf("login on the production host: %q, %v", out, err)
	}
	if got := onHost(t, prod, "cat "+hostscript.RecordingsDir+"/"+g.Username+"/*/stdout"); !strings.Contains(got, "on-the-record") {
		t.Errorf("the production host's session was not recorded: %q", got)
	}
}
