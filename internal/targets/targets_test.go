package targets

import (
	"context"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	labssm "github.com/passport-access/terraform-provider-passport/internal/lab/ssm"
)

// fleetOf serves n nodes through the lab's SSM; node i is Windows when
// i%3 == 2, offline when i%4 == 3, and in production when i is even.
func fleetOf(t *testing.T, n int) (*ssmsdk.Client, []*node.Model) {
	t.Helper()
	srv := awsjson.NewServer(awsjson.Config{Region: "us-east-1", Credentials: map[string]string{"AKIATEST": "secret"}})
	svc := labssm.New(labssm.Config{})
	t.Cleanup(svc.Close)
	srv.Register(svc.API())
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	var nodes []*node.Model
	for i := range n {
		platform, env := node.Linux, "staging"
		if i%3 == 2 {
			platform = node.Windows
		}
		if i%2 == 0 {
			env = "production"
		}
		m := node.NewModel(node.Info{
			InstanceID:   fmt.Sprintf("i-%017x", i+1),
			ComputerName: fmt.Sprintf("host-%d", i),
			PlatformType: platform,
			Tags:         map[string]string{"Env": env, "Team": "platform"},
		})
		m.SetOnline(i%4 != 3)
		svc.AddNode(m)
		nodes = append(nodes, m)
	}
	return ssmsdk.New(ssmsdk.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(ts.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIATEST", "secret", ""),
	}), nodes
}

func TestFind(t *testing.T) {
	client, nodes := fleetOf(t, 24)
	want := func(keep func(i int) bool) []string {
		var ids []string
		for i, n := range nodes {
			if keep(i) {
				ids = append(ids, n.Info().InstanceID)
			}
		}
		return ids
	}
	for _, tc := range []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"everything, across pages", Filter{}, want(func(int) bool { return true })},
		{"by platform", Filter{Platform: "Windows"}, want(func(i int) bool { return i%3 == 2 })},
		{"by ping status", Filter{PingStatus: "ConnectionLost"}, want(func(i int) bool { return i%4 == 3 })},
		{"by tag", Filter{Tags: map[string]string{"Env": "staging"}}, want(func(i int) bool { return i%2 == 1 })},
		// SSM refuses tag filters mixed with other filter types: the
		// platform and status must be applied on our side.
		{"by tag, platform and status", Filter{Tags: map[string]string{"Env": "staging", "Team": "platform"}, Platform: "Linux", PingStatus: "Online"},
			want(func(i int) bool { return i%2 == 1 && i%3 != 2 && i%4 != 3 })},
		{"no match", Filter{Tags: map[string]string{"Env": "nowhere"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(context.Background(), client, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, i := range got {
				ids = append(ids, i.InstanceID)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("Find(%+v) = %v, want %v", tc.filter, ids, tc.want)
			}
		})
	}
}

func TestDigestIsStableAndDistinct(t *testing.T) {
	a := Filter{Tags: map[string]string{"a": "1", "b": "2"}, Platform: "Linux"}
	b := Filter{Tags: map[string]string{"b": "2", "a": "1"}, Platform: "Linux"}
	if a.Digest() != b.Digest() {
		t.Error("the same filter has two digests")
	}
	c := Filter{Tags: map[string]string{"a": "1,b=2"}, Platform: "Linux"}
	if a.Digest() == c.Digest() {
		t.Error("different filters share a digest")
	}
}
