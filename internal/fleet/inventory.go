package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Target is what SSM knows of one instance.
type Target struct {
	InstanceID string
	// Known is false when SSM does not manage the instance in this account
	// and region (wrong id, no agent, agent not registered); the other
	// fields are then empty.
	Known bool
	// PingStatus is Online, ConnectionLost or Inactive.
	PingStatus string
	// PlatformType is Linux, Windows or MacOS.
	PlatformType string
	PlatformName string
	ComputerName string
	IPAddress    string
}

// Unreachable says, naming the instance, why it cannot run a script now
// and what to do; it is empty when the agent is online.
func (t Target) Unreachable() string {
	switch {
	case !t.Known:
		return fmt.Sprintf("%s: not a managed node in this account and region; check the instance id and region, and that its SSM agent is installed and registered", t.InstanceID)
	case t.PingStatus != string(types.PingStatusOnline):
		return fmt.Sprintf("%s: SSM agent is not connected (PingStatus %s); start the instance or check its agent", t.InstanceID, t.PingStatus)
	}
	return ""
}

// Inventory asks SSM about each instance and returns one Target per id,
// including those SSM does not know. It fails only when SSM cannot be asked
// (credentials, permissions, network) or the ids are malformed.
func (r *Runner) Inventory(ctx context.Context, ids []string) (map[string]Target, error) {
	if err := checkTargets("instance ids", ids); err != nil {
		return nil, err
	}
	chunks := chunk(ids, maxBatch)
	found := make([][]types.InstanceInformation, len(chunks))
	errs := make([]error, len(chunks))
	r.parallel(len(chunks), func(i int) {
		found[i], errs[i] = r.describe(ctx, chunks[i])
	})
	inv := make(map[string]Target, len(ids))
	for _, id := range ids {
		inv[id] = Target{InstanceID: id}
	}
	for i, err := range errs {
		if err != nil {
			return nil, &inventoryError{first: chunks[i][0], err: err}
		}
	}
	for _, list := range found {
		for _, info := range list {
			id := aws.ToString(info.InstanceId)
			if _, asked := inv[id]; !asked {
				continue
			}
			inv[id] = Target{
				InstanceID:   id,
				Known:        true,
				PingStatus:   string(info.PingStatus),
				PlatformType: string(info.PlatformType),
				PlatformName: aws.ToString(info.PlatformName),
				ComputerName: aws.ToString(info.ComputerName),
				IPAddress:    aws.ToString(info.IPAddress),
			}
		}
	}
	return inv, nil
}

// inventoryError reports a failed inventory in words, keeping the SDK's
// error for errors.As.
type inventoryError struct {
	first string // the first instance of the chunk that failed
	err   error
}

func (e *inventoryError) Error() string {
	advice := "check the AWS credentials, region and the ssm:DescribeInstanceInformation permission"
	switch {
	case throttled(e.err):
		advice = "SSM throttled every attempt; try again later, or ask AWS for a higher SSM request rate"
	case errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled):
		advice = "SSM did not answer in time; check the endpoint and the network, or allow more time"
	}
	return fmt.Sprintf("asking SSM about instances %s…: %s; %s", e.first, explain(e.err), advice)
}

func (e *inventoryError) Unwrap() error { return e.err }

// describe returns what SSM knows of ids, leaving out the ids it does not
// know.
func (r *Runner) describe(ctx context.Context, ids []string) ([]types.InstanceInformation, error) {
	found, err := r.describePages(ctx, ids)
	var invalid *types.InvalidInstanceId
	if !errors.As(err, &invalid) {
		return found, err
	}
	// SSM may refuse the whole filter when one id is not a managed node
	// (its API reference lists InvalidInstanceId for this call) rather than
	// leave it out. Halving finds the unknown ids in a few calls each; an id
	// refused on its own is unknown.
	if len(ids) == 1 {
		return nil, nil
	}
	h := len(ids) / 2
	first, err := r.describe(ctx, ids[:h])
	if err != nil {
		return nil, err
	}
	second, err := r.describe(ctx, ids[h:])
	if err != nil {
		return nil, err
	}
	return append(first, second...), nil
}

func (r *Runner) describePages(ctx context.Context, ids []string) ([]types.InstanceInformation, error) {
	pages := ssm.NewDescribeInstanceInformationPaginator(r.ssm, &ssm.DescribeInstanceInformationInput{
		Filters:    []types.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: ids}},
		MaxResults: aws.Int32(maxBatch),
	})
	var all []types.InstanceInformation
	for pages.HasMorePages() {
		var out *ssm.DescribeInstanceInformationOutput
		// A paginator keeps its token when a page fails, so retrying
		// NextPage asks for the same page again.
		err := r.call(ctx, true, func(ctx context.Context) (err error) {
			out, err = pages.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, out.InstanceInformationList...)
	}
	return all, nil
}

// chunk splits ids into consecutive slices of at most n.
func chunk(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// parallel calls f(0) … f(n-1) with at most Options.Concurrency at once and
// returns when all have.
func (r *Runner) parallel(n int, f func(i int)) {
	sem := make(chan struct{}, r.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}
