//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"net"
	"runtime"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// On other systems the package builds, so that the lab and the CLI do, but
// no host boots: Available says why.

var errNotLinux = errors.New("sandbox hosts need Linux (namespaces, overlayfs); this is " + runtime.GOOS)

// Host is a sandbox Linux host; none can exist on this system.
type Host struct{}

var _ node.Node = (*Host)(nil)

// Boot always fails on this system.
func Boot(context.Context, Config) (*Host, error) { return nil, errNotLinux }

// Kill always fails on this system.
func Kill(int) error { return errNotLinux }

func (*Host) Info() node.Info { return node.Info{} }
func (*Host) Online() bool    { return false }
func (*Host) Run(context.Context, node.Script) (node.Result, error) {
	return node.Result{}, node.ErrOffline
}
func (*Host) Stop() error                                     { return nil }
func (*Host) Start(context.Context) error                     { return errNotLinux }
func (*Host) SetSlow(time.Duration)                           {}
func (*Host) SSHAddr() string                                 { return "" }
func (*Host) DialPort(context.Context, int) (net.Conn, error) { return nil, errNotLinux }
func (*Host) Close() error                                    { return nil }
func (*Host) PID() int                                        { return 0 }
