package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TagSource tells instances' tags. It returns an entry for every id it
// found; an id missing from the answer has no tags.
type TagSource interface {
	Tags(ctx context.Context, ids []string) (map[string]map[string]string, error)
}

// TagDescriber is the one EC2 call EC2Tags needs; *ec2.Client has it.
type TagDescriber interface {
	DescribeTags(ctx context.Context, in *ec2.DescribeTagsInput, opts ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error)
}

// EC2Tags reads instance tags with EC2 DescribeTags.
//
// Systems Manager does not serve EC2 instances' tags: its
// DescribeInstanceInformation carries none, and its ListTagsForResource
// answers only for hybrid nodes (mi-…), not for i-… instances, whose tags
// belong to EC2. One DescribeTags call filtered by resource id covers up to
// 199 instances (EC2 takes 200 filter values a call, all filters together,
// and resource-type is one) and pages by 1000 tags.
// The caller needs ec2:DescribeTags.
type EC2Tags struct {
	Client TagDescriber
}

// describeTagsIDs is how many instances one call asks about. A request of
// 200 targets (the most one takes) was refused at 200 with the type filter
// (BenchmarkTimeToAccess1000 in internal/service found it).
const describeTagsIDs = 199

// Tags implements TagSource.
func (s EC2Tags) Tags(ctx context.Context, ids []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(ids))
	for batch := range slices.Chunk(ids, describeTagsIDs) {
		in := &ec2.DescribeTagsInput{
			Filters: []ec2types.Filter{
				{Name: aws.String("resource-type"), Values: []string{"instance"}},
				{Name: aws.String("resource-id"), Values: batch},
			},
			MaxResults: aws.Int32(1000),
		}
		p := ec2.NewDescribeTagsPaginator(s.Client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("reading the tags of %s with EC2 DescribeTags (policy needs them; the caller needs ec2:DescribeTags): %w", someIDs(batch), err)
			}
			for _, t := range page.Tags {
				id := aws.ToString(t.ResourceId)
				if out[id] == nil {
					out[id] = map[string]string{}
				}
				out[id][aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	return out, nil
}

// Gate authorizes access requests against a Policy, filling in each
// target's tags from a TagSource first. It is what the access core calls
// before anything touches a host.
type Gate struct {
	Policy *Policy
	// Tags looks up the tags of targets that arrive without any. Nil means
	// such targets have none, so tag conditions never match them.
	Tags TagSource
	// Groups are the session's groups, used for requests that carry none:
	// the provider builds one Gate per signed-in session.
	Groups []string
}

// Authorize returns nil when policy grants every target of req at once;
// a *DeniedError naming each denied target and why; or an *ApprovalError
// when the request may be granted once enough people approve. When the
// tags cannot be read the request is refused: policy that cannot see a
// target's tags cannot be trusted to decide about it.
func (g *Gate) Authorize(ctx context.Context, req Request) error {
	d, err := g.Decide(ctx, req)
	if err != nil {
		return err
	}
	return d.Err()
}

// Decide is Authorize's decision itself, for callers that act on an
// approval (the Passport service) or read who may approve.
func (g *Gate) Decide(ctx context.Context, req Request) (Decision, error) {
	if g == nil || g.Policy == nil {
		return Decision{}, fmt.Errorf("access cannot be authorized: no policy was loaded")
	}
	req, err := g.tagged(ctx, req)
	if err != nil {
		return Decision{}, err
	}
	return g.Policy.Authorize(req), nil
}

// tagged fills in the session's groups and the tags of targets that came
// without any.
func (g *Gate) tagged(ctx context.Context, req Request) (Request, error) {
	if len(req.Groups) == 0 {
		req.Groups = g.Groups
	}
	var untagged []string
	for _, t := range req.Targets {
		if t.Tags == nil {
			untagged = append(untagged, t.ID)
		}
	}
	// Without policy every target is denied anyway, and the denial should
	// say so rather than fail on a tag lookup.
	if g.Tags != nil && len(untagged) > 0 && g.Policy.Len() > 0 {
		tags, err := g.Tags.Tags(ctx, untagged)
		if err != nil {
			return req, err
		}
		req.Targets = slices.Clone(req.Targets)
		for i, t := range req.Targets {
			if t.Tags == nil {
				req.Targets[i].Tags = tags[t.ID]
			}
		}
	}
	return req, nil
}

// someIDs names ids in an error: all of a few, the first of many.
func someIDs(ids []string) string {
	if len(ids) <= 5 {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d other instances", strings.Join(ids[:3], ", "), len(ids)-3)
}
