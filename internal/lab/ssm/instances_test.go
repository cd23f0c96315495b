package ssm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

func TestDescribeInstanceInformationReportsNodes(t *testing.T) {
	l := newLab(t)
	web, _ := l.add(node.Linux, map[string]string{"Role": "web"})
	win, _ := l.add(node.Windows, map[string]string{"Role": "rdp", "Owner": "ops"})
	lost, lostHost := l.add(node.Linux, map[string]string{"Role": "web"})

	registered := l.clock.Now()
	lostHost.SetOnline(false)
	l.clock.Advance(10 * time.Minute)

	out, err := l.client.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]types.InstanceInformation{}
	for _, info := range out.InstanceInformationList {
		byID[aws.ToString(info.InstanceId)] = info
	}
	if len(byID) != 3 {
		t.Fatalf("listed %d nodes, want 3", len(byID))
	}
	w := byID[web]
	if w.PingStatus != types.PingStatusOnline || w.PlatformType != types.PlatformTypeLinux || aws.ToString(w.PlatformName) != "Debian GNU/Linux" ||
		w.ResourceType != types.ResourceTypeEc2Instance || aws.ToString(w.IPAddress) == "" || aws.ToString(w.ComputerName) == "" ||
		aws.ToString(w.AgentVersion) != "3.3.1000.0" || !aws.ToTime(w.LastPingDateTime).Equal(l.clock.Now()) {
		t.Fatalf("online node = %+v", w)
	}
	if byID[win].PlatformType != types.PlatformTypeWindows {
		t.Fatalf("windows node = %+v", byID[win])
	}
	g := byID[lost]
	if g.PingStatus != types.PingStatusConnectionLost || !aws.ToTime(g.LastPingDateTime).Equal(registered) {
		t.Fatalf("lost node: %s, last ping %v; want ConnectionLost, last seen at %v", g.PingStatus, g.LastPingDateTime, registered)
	}

	filter := func(key string, values ...string) []types.InstanceInformationStringFilter {
		return []types.InstanceInformationStringFilter{{Key: aws.String(key), Values: values}}
	}
	tests := []struct {
		name string
		in   *ssm.DescribeInstanceInformationInput
		want []string
	}{
		{"ping status", &ssm.DescribeInstanceInformationInput{Filters: filter("PingStatus", "Online")}, []string{web, win}},
		{"platform", &ssm.DescribeInstanceInformationInput{Filters: filter("PlatformTypes", "Windows")}, []string{win}},
		{"instance ids", &ssm.DescribeInstanceInformationInput{Filters: filter("InstanceIds", lost, win)}, []string{win, lost}},
		{"tag", &ssm.DescribeInstanceInformationInput{Filters: filter("tag:Role", "web")}, []string{web, lost}},
		{"tag key", &ssm.DescribeInstanceInformationInput{Filters: filter("tag-key", "Owner")}, []string{win}},
		{"filters combine", &ssm.DescribeInstanceInformationInput{Filters: append(filter("PlatformTypes", "Linux"), filter("PingStatus", "ConnectionLost")...)}, []string{lost}},
		{"tag filters combine", &ssm.DescribeInstanceInformationInput{Filters: append(filter("tag:Role", "web", "rdp"), filter("tag-key", "Owner")...)}, []string{win}},
		{"resource type", &ssm.DescribeInstanceInformationInput{Filters: filter("ResourceType", "ManagedInstance")}, nil},
		{"legacy filter list", &ssm.DescribeInstanceInformationInput{InstanceInformationFilterList: []types.InstanceInformationFilter{
			{Key: types.InstanceInformationFilterKeyPlatformTypes, ValueSet: []string{"Linux"}},
			{Key: types.InstanceInformationFilterKeyPingStatus, ValueSet: []string{"Online"}}}}, []string{web}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := l.client.DescribeInstanceInformation(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, info := range out.InstanceInformationList {
				got = append(got, aws.ToString(info.InstanceId))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDescribeInstanceInformationPaginates(t *testing.T) {
	l := newLab(t)
	want, _ := ids(12, l, node.Linux, nil)
	var got []string
	p := ssm.NewDescribeInstanceInformationPaginator(l.client, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, info := range out.InstanceInformationList {
			got = append(got, aws.ToString(info.InstanceId))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("got %d nodes in %d pages, want all 12 in 3", len(got), pages)
	}

	// Without MaxResults a page holds 10 nodes, as on AWS.
	first, err := l.client.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(first.InstanceInformationList) != 10 || first.NextToken == nil {
		t.Fatalf("default page: %v, %d nodes, next token %v", err, len(first.InstanceInformationList), first.NextToken)
	}
}

func TestDescribeInstanceInformationRefusesBadInput(t *testing.T) {
	l := newLab(t)
	l.add(node.Linux, nil)
	str := func(key string, values ...string) *ssm.DescribeInstanceInformationInput {
		values = append([]string{}, values...) // never nil: the SDK itself refuses a nil Values
		return &ssm.DescribeInstanceInformationInput{Filters: []types.InstanceInformationStringFilter{{Key: aws.String(key), Values: values}}}
	}
	tests := []struct {
		name string
		in   *ssm.DescribeInstanceInformationInput
		want func(error) bool
	}{
		{"max results 4", &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(4)}, is[*types.ValidationException]},
		{"max results 51", &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(51)}, is[*types.ValidationException]},
		{"unknown key", str("Hostname", "x"), is[*types.InvalidFilterKey]},
		{"tag filter in legacy list", &ssm.DescribeInstanceInformationInput{InstanceInformationFilterList: []types.InstanceInformationFilter{
			{Key: "tag:Role", ValueSet: []string{"web"}}}}, is[*types.InvalidFilterKey]},
		{"bad ping status", str("PingStatus", "Asleep"), is[*types.InvalidInstanceInformationFilterValue]},
		{"bad platform", str("PlatformTypes", "Plan9"), is[*types.InvalidInstanceInformationFilterValue]},
		{"malformed instance id", str("InstanceIds", "web-1"), is[*types.InvalidInstanceId]},
		{"unregistered instance id", str("InstanceIds", "i-0000000000000beef"), is[*types.InvalidInstanceId]},
		{"tag filter with another filter", &ssm.DescribeInstanceInformationInput{Filters: []types.InstanceInformationStringFilter{
			{Key: aws.String("tag:Role"), Values: []string{"web"}}, {Key: aws.String("PingStatus"), Values: []string{"Online"}}}}, is[*types.InvalidFilterKey]},
		{"legacy list with filters", &ssm.DescribeInstanceInformationInput{
			InstanceInformationFilterList: []types.InstanceInformationFilter{{Key: types.InstanceInformationFilterKeyPingStatus, ValueSet: []string{"Online"}}},
			Filters:                       []types.InstanceInformationStringFilter{{Key: aws.String("PlatformTypes"), Values: []string{"Linux"}}}}, is[*types.ValidationException]},
		{"no values", str("PingStatus"), is[*types.ValidationException]},
		{"forged token", &ssm.DescribeInstanceInformationInput{NextToken: aws.String("x.y")}, is[*types.InvalidNextToken]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.client.DescribeInstanceInformation(context.Background(), tt.in)
			if !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	l := newLab(t)
	l.add(node.Linux, nil)
	l.server.SetThrottleEvery(2)
	for range 4 {
		if _, err := l.client.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.server.Calls()["AmazonSSM.DescribeInstanceInformation"]; got < 6 {
		t.Fatalf("server saw %d calls for 4 answers with every 2nd throttled; the SDK did not retry", got)
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	l := newLab(t)
	_, err := l.newClient("not-the-secret").DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("got %v, want InvalidSignatureException", err)
	}
}

func TestNodeLookupFollowsRegistration(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	if n, ok := l.svc.Node(id); !ok || n != host {
		t.Fatalf("Node(%s) = %v, %v; want the registered node", id, n, ok)
	}
	l.svc.RemoveNode(id)
	if _, ok := l.svc.Node(id); ok {
		t.Fatal("a removed node is still found")
	}
	out, err := l.client.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(out.InstanceInformationList) != 0 {
		t.Fatalf("a removed node is still described: %v %+v", err, out)
	}
}
