//go:build !winhost

package winhost

import (
	"context"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// Run implements node.Node. This build has no reader for Passport's shipped
// Windows programs yet (hostscript's Windows programs and package winpass
// are built with the winhost tag), so every script is refused with exit 2
// and nothing changes; programs.go replaces this file once they land.
func (h *Host) Run(ctx context.Context, s node.Script) (node.Result, error) {
	if !h.Online() {
		return node.Result{}, node.ErrOffline
	}
	if err := ctx.Err(); err != nil {
		return node.Result{}, err
	}
	return node.Result{ExitCode: hostscript.ExitData, Stderr: []byte("passport lab: " + h.String() +
		" runs only Passport's shipped Windows programs, and this lab was built without them; nothing was changed\n")}, nil
}
