package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
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

// refused reports whether SSM answered a call with a client error (4xx,
// throttling included), which means it did not act on it. Without an answer,
// or after a server fault, a SendCommand may have been accepted.
func refused(err error) bool {
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() >= 400 && resp.HTTPStatusCode() < 500
}

// notYetVisible reports whether SSM denied knowing an invocation that
// fleet knows exists: SSM creates invocations a moment after it accepts a
// command, and GetCommandInvocation says InvocationDoesNotExist until then.
func notYetVisible(err error) bool {
	var missing *types.InvocationDoesNotExist
	return errors.As(err, &missing)
}

// call runs f until it succeeds, fails in a way that waiting cannot fix, or
// ctx ends. Throttling is always worth waiting out: the call was refused
// before SSM acted on it. Server faults and invocations not yet visible are
// waited out only for reads (idempotent), since a SendCommand that failed
// that way may have been accepted.
func (r *Runner) call(ctx context.Context, idempotent bool, f func(context.Context) error) error {
	wait := r.opts.ThrottleBackoff
	var last error
	for {
		err := f(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil && last != nil:
			return &gaveUp{stop: ctx.Err(), last: last}
		case ctx.Err() != nil:
			return err
		case !throttled(err) && !(idempotent && (serverFault(err) || notYetVisible(err))):
			return err
		}
		last = err
		if r.opts.Sleep(ctx, wait) != nil {
			return &gaveUp{stop: ctx.Err(), last: last}
		}
		wait = min(2*wait, r.opts.MaxPoll)
	}
}

// gaveUp is a call that ctx ended while it waited out SSM's refusals; it
// keeps the last refusal, which says more than "context deadline exceeded".
type gaveUp struct{ stop, last error }

func (e *gaveUp) Error() string   { return explain(e) }
func (e *gaveUp) Unwrap() []error { return []error{e.stop, e.last} }

// explain turns an SSM error into words for a Reason, keeping the API's own
// code and message, which AWS documents and operators search for.
func explain(err error) string {
	var g *gaveUp
	if errors.As(err, &g) {
		return fmt.Sprintf("gave up (%v) while SSM kept answering %s", g.stop, explain(g.last))
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Sprintf("%s: %s", api.ErrorCode(), api.ErrorMessage())
	}
	return err.Error()
}
