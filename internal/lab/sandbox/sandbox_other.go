//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"net"
	"runtime"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
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

// The methods below exist so that code using hosts compiles here; a Host
// value can only be the zero one.

// Info implements node.Node.
func (*Host) Info() node.Info { return node.Info{} }

// Online implements node.Node; it is always false.
func (*Host) Online() bool { return false }

// Run implements node.Node; it always returns node.ErrOffline.
func (*Host) Run(context.Context, node.Script) (node.Result, error) {
	return node.Result{}, node.ErrOffline
}

// Stop does nothing.
func (*Host) Stop() error { return nil }

// Start always fails on this system.
func (*Host) Start(context.Context) error { return errNotLinux }

// SetSlow does nothing.
func (*Host) SetSlow(time.Duration) {}

// SSHAddr is empty.
func (*Host) SSHAddr() string { return "" }

// DialPort always fails on this system.
func (*Host) DialPort(context.Context, int) (net.Conn, error) { return nil, errNotLinux }

// Close does nothing.
func (*Host) Close() error { return nil }

// PID is 0.
func (*Host) PID() int { return 0 }

// Shell always fails on this system.
func (*Host) Shell(context.Context, string, ssmsession.ShellRequest) (ssmsession.Process, error) {
	return nil, errNotLinux
}

// RemoveCgroup does nothing on this system.
func RemoveCgroup(string) {}

// SystemdAvailable always says why not on this system.
func SystemdAvailable() error { return errNotLinux }
