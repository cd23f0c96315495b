package session_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// TestDescribeSessions: what `aws ssm describe-sessions` shows a person,
// through every state a session passes.
func TestDescribeSessions(t *testing.T) {
	tl := startLab(t, 1)
	ctx := context.Background()
	target := tl.Hosts[0].Info().InstanceID
	before := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)

	waiting := tl.start(t, target, "AWS-StartSSHSession", nil)
	open := tl.start(t, target, "AWS-StartPortForwardingSession", map[string][]string{"portNumber": {"22"}})
	var ws net.Conn
	d := &ssmsession.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		ws = c
		return c, err
	}}
	s, err := d.Dial(ctx, aws.ToString(open.StreamUrl), aws.ToString(open.TokenValue))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ended := tl.start(t, target, "AWS-StartSSHSession", nil)
	if _, err := tl.ssm.TerminateSession(ctx, &ssmsdk.TerminateSessionInput{SessionId: ended.SessionId}); err != nil {
		t.Fatal(err)
	}

	describe := func(in *ssmsdk.DescribeSessionsInput) map[string]types.Session {
		t.Helper()
		got := map[string]types.Session{}
		var order []string
		p := ssmsdk.NewDescribeSessionsPaginator(tl.ssm, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("DescribeSessions %s: %v", in.State, err)
			}
			for _, s := range out.Sessions {
				got[aws.ToString(s.SessionId)] = s
				order = append(order, aws.ToString(s.SessionId))
			}
		}
		// Newest first.
		for i := 1; i < len(order); i++ {
			if !aws.ToTime(got[order[i-1]].StartDate).After(aws.ToTime(got[order[i]].StartDate)) &&
				!aws.ToTime(got[order[i-1]].StartDate).Equal(aws.ToTime(got[order[i]].StartDate)) {
				t.Errorf("sessions are not listed newest first: %v", order)
			}
		}
		return got
	}
	status := func(m map[string]types.Session, id *string) types.SessionStatus { return m[aws.ToString(id)].Status }

	active := describe(&ssmsdk.DescribeSessionsInput{State: types.SessionStateActive, MaxResults: aws.Int32(1)})
	if len(active) != 2 || status(active, waiting.SessionId) != types.SessionStatusConnecting || status(active, open.SessionId) != types.SessionStatusConnected {
		t.Fatalf("Active sessions: %+v; want the unopened one Connecting and the open one Connected", active)
	}
	got := active[aws.ToString(open.SessionId)]
	if aws.ToString(got.Target) != target || aws.ToString(got.DocumentName) != "AWS-StartPortForwardingSession" ||
		aws.ToString(got.Owner) != lab.OperatorARN || got.StartDate == nil || got.EndDate != nil {
		t.Errorf("the open session is described as %+v", got)
	}
	history := describe(&ssmsdk.DescribeSessionsInput{State: types.SessionStateHistory})
	if len(history) != 1 || status(history, ended.SessionId) != types.SessionStatusTerminated || history[aws.ToString(ended.SessionId)].EndDate == nil {
		t.Fatalf("History: %+v; want the terminated session with its end date", history)
	}

	// The client's websocket drops: the session waits for it to resume.
	ws.Close()
	deadline := time.Now().Add(30 * time.Second)
	for status(describe(&ssmsdk.DescribeSessionsInput{State: types.SessionStateActive}), open.SessionId) != types.SessionStatusDisconnected {
		if time.Now().After(deadline) {
			t.Fatal("a session whose websocket dropped is never described as Disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}

	filter := func(key types.SessionFilterKey, value string) *ssmsdk.DescribeSessionsInput {
		return &ssmsdk.DescribeSessionsInput{State: types.SessionStateActive, Filters: []types.SessionFilter{{Key: key, Value: aws.String(value)}}}
	}
	keys := func(m map[string]types.Session) []string {
		var ids []string
		for id := range m {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	both := []string{aws.ToString(waiting.SessionId), aws.ToString(open.SessionId)}
	slices.Sort(both)
	for name, tt := range map[string]struct {
		in   *ssmsdk.DescribeSessionsInput
		want []string
	}{
		"target":         {filter(types.SessionFilterKeyTargetId, target), both},
		"other target":   {filter(types.SessionFilterKeyTargetId, "i-0000000000000beef"), nil},
		"owner":          {filter(types.SessionFilterKeyOwner, lab.OperatorARN), both},
		"status":         {filter(types.SessionFilterKeyStatus, "Connecting"), []string{aws.ToString(waiting.SessionId)}},
		"session id":     {filter(types.SessionFilterKeySessionId, aws.ToString(open.SessionId)), []string{aws.ToString(open.SessionId)}},
		"invoked after":  {filter(types.SessionFilterKeyInvokedAfter, before), both},
		"invoked before": {filter(types.SessionFilterKeyInvokedBefore, before), nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got := keys(describe(tt.in)); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	for name, tt := range map[string]struct {
		in   *ssmsdk.DescribeSessionsInput
		want func(error) bool
	}{
		"unknown state": {&ssmsdk.DescribeSessionsInput{State: "Forever"}, is[*types.ValidationException]},
		"201 results":   {&ssmsdk.DescribeSessionsInput{State: types.SessionStateActive, MaxResults: aws.Int32(201)}, is[*types.ValidationException]},
		"bad status":    {filter(types.SessionFilterKeyStatus, "Sleeping"), is[*types.InvalidFilterKey]},
		"bad timestamp": {filter(types.SessionFilterKeyInvokedAfter, "yesterday"), is[*types.InvalidFilterKey]},
		"forged token":  {&ssmsdk.DescribeSessionsInput{State: types.SessionStateActive, NextToken: aws.String("x.y")}, is[*types.InvalidNextToken]},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tl.ssm.DescribeSessions(ctx, tt.in); !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// is reports whether err is (or wraps) the SDK's typed error T.
func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}
