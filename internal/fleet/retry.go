package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// throttled reports whether SSM refused a call for its rate. The SDK
// retries those itself; this is for when its attempts or its retry quota
// are used up (both keep the API error in the chain).
func throttled(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	_, ok := retry.DefaultThrottleErrorCodes[api.ErrorCode()]
	return ok
}

// serverFault reports whether SSM answered with a 5xx, which a later call
// may not meet.
func serverFault(err error) bool {
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() >= 500
}

// call runs f until it succeeds, fails in a way that waiting cannot fix, or
// ctx ends. Throttling is always worth waiting out: the call was refused
// before SSM acted on it. Server faults are waited out only for reads
// (idempotent), since a SendCommand that failed that way may have been
// accepted.
func (r *Runner) call(ctx context.Context, idempotent bool, f func(context.Context) error) error {
	wait := r.opts.ThrottleBackoff
	for {
		err := f(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !throttled(err) && !(idempotent && serverFault(err)) {
			return err
		}
		if r.opts.Sleep(ctx, wait) != nil {
			return err
		}
		wait = min(2*wait, r.opts.MaxPoll)
	}
}

// explain turns an SSM error into words for a Reason, keeping the API's own
// code and message, which AWS documents and operators search for.
func explain(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Sprintf("%s: %s", api.ErrorCode(), api.ErrorMessage())
	}
	return err.Error()
}
