// Package targets finds the managed instances a person may ask access to:
// the SSM inventory filtered by tags, platform and connection status.
package targets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Lister is the part of the SSM client that discovery needs.
type Lister interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// Filter selects instances. Every set field must match.
type Filter struct {
	Tags       map[string]string // tag key -> required value
	Platform   string            // Linux, Windows, MacOS; empty for any
	PingStatus string            // Online, ConnectionLost, Inactive; empty for any
}

// Instance is one managed instance as SSM reports it.
type Instance struct {
	InstanceID   string
	ComputerName string
	IPAddress    string
	PlatformType string
	PlatformName string
	PingStatus   string
	AgentVersion string
}

// Platforms and ping statuses SSM knows, for validating a Filter early.
var (
	Platforms    = []string{"Linux", "Windows", "MacOS"}
	PingStatuses = []string{"Online", "ConnectionLost", "Inactive"}
)

// Find lists every instance matching f, sorted by instance id so that a
// plan does not change when SSM returns pages in another order.
func Find(ctx context.Context, c Lister, f Filter) ([]Instance, error) {
	in := &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(50)}
	keys := make([]string, 0, len(f.Tags))
	for k := range f.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Filters = append(in.Filters, types.InstanceInformationStringFilter{Key: aws.String("tag:" + k), Values: []string{f.Tags[k]}})
	}
	// SSM refuses tag filters mixed with other filter types, so with tags
	// the platform and status are checked here instead.
	serverSide := len(keys) == 0
	if serverSide && f.Platform != "" {
		in.Filters = append(in.Filters, types.InstanceInformationStringFilter{Key: aws.String("PlatformTypes"), Values: []string{f.Platform}})
	}
	if serverSide && f.PingStatus != "" {
		in.Filters = append(in.Filters, types.InstanceInformationStringFilter{Key: aws.String("PingStatus"), Values: []string{f.PingStatus}})
	}
	var found []Instance
	p := ssm.NewDescribeInstanceInformationPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing managed instances with ssm:DescribeInstanceInformation: %w", err)
		}
		for _, i := range page.InstanceInformationList {
			if (f.Platform != "" && string(i.PlatformType) != f.Platform) || (f.PingStatus != "" && string(i.PingStatus) != f.PingStatus) {
				continue
			}
			found = append(found, Instance{
				InstanceID:   aws.ToString(i.InstanceId),
				ComputerName: aws.ToString(i.ComputerName),
				IPAddress:    aws.ToString(i.IPAddress),
				PlatformType: string(i.PlatformType),
				PlatformName: aws.ToString(i.PlatformName),
				PingStatus:   string(i.PingStatus),
				AgentVersion: aws.ToString(i.AgentVersion),
			})
		}
	}
	sort.Slice(found, func(a, b int) bool { return found[a].InstanceID < found[b].InstanceID })
	return found, nil
}

// Digest is a short stable name for the filter.
func (f Filter) Digest() string {
	keys := make([]string, 0, len(f.Tags))
	for k := range f.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "tag:%q=%q\n", k, f.Tags[k])
	}
	fmt.Fprintf(h, "platform=%q\nping=%q\n", f.Platform, f.PingStatus)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
