package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// tunnel forwards 127.0.0.1:localPort to remotePort of target over one
// session until ctx ends or the session does; ready is told the local
// address once it listens. req is the request held for target, if any.
func tunnel(ctx context.Context, cmd *cobra.Command, f *connectFlags, target string, req *connect.Request, remotePort, localPort int, ready func(net.Addr, *connect.Session)) error {
	api, err := f.sessions(ctx, req)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(localPort)))
	if err != nil {
		return fmt.Errorf("listening on 127.0.0.1:%d: %w (choose another --local-port)", localPort, err)
	}
	defer ln.Close()
	s, err := connect.Connector{API: api}.Start(ctx, target, remotePort, connect.PortForwardDocument)
	if err != nil {
		return err
	}
	defer s.End()
	if !s.Multiplexed() {
		return fmt.Errorf("the SSM agent on %s (version %s) carries one connection per session; update the agent to 3.0.196.0 or later to tunnel", target, s.AgentVersion())
	}
	ready(ln.Addr(), s)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	warnExpiry(ctx, cmd.ErrOrStderr(), req, realClock)
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	err = connect.Forward(ctx, ln, func() (io.ReadWriteCloser, error) { return s.Open() }, func(err error) {
		fmt.Fprintf(cmd.ErrOrStderr(), "passport: a connection to %s port %d failed: %v\n", target, remotePort, err)
	})
	if err != nil {
		return err
	}
	if serr := s.Err(); serr != nil && !errors.Is(serr, context.Canceled) && cmd.Context().Err() == nil {
		return fmt.Errorf("session %s to %s ended: %w", s.ID, target, serr)
	}
	return nil
}

func newTunnelCommand() *cobra.Command {
	var f connectFlags
	var remotePort, localPort int
	cmd := &cobra.Command{
		Use:   "tunnel <target> --remote-port P [--local-port L]",
		Short: "Forward a local port to a target's port through Session Manager",
		Long: `tunnel listens on 127.0.0.1 and carries every connection made to it to
a port of the target, all over one Session Manager session
(AWS-StartPortForwardingSession). It prints the local address and runs until
Ctrl-C, which terminates the session. A dropped websocket is resumed.

The target is an instance id, or the name of a target of a request you hold.`,
		Example: "  passport tunnel i-0123456789abcdef0 --remote-port 5432 --local-port 15432",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remotePort < 1 || remotePort > 65535 {
				return errors.New("--remote-port is required: the target's TCP port (1-65535)")
			}
			if localPort < 0 || localPort > 65535 {
				return fmt.Errorf("--local-port %d is not a TCP port", localPort)
			}
			target, req, err := resolveTarget(args[0])
			if err != nil {
				return err
			}
			return tunnel(cmd.Context(), cmd, &f, target, req, remotePort, localPort, func(a net.Addr, s *connect.Session) {
				fmt.Fprintf(cmd.OutOrStdout(), "Forwarding %s to %s port %d (session %s). Press Ctrl-C to stop.\n", a, target, remotePort, s.ID)
			})
		},
	}
	cmd.Flags().IntVar(&remotePort, "remote-port", 0, "the target's TCP port (required)")
	cmd.Flags().IntVar(&localPort, "local-port", 0, "the local port on 127.0.0.1 (default: a free one)")
	f.register(cmd)
	return cmd
}

func newRDPCommand() *cobra.Command {
	var f connectFlags
	var localPort int
	cmd := &cobra.Command{
		Use:   "rdp <target> [--local-port L]",
		Short: "Forward Remote Desktop (3389) to a local port and print how to log in",
		Long: `rdp forwards port 3389 of the target to 127.0.0.1 through Session Manager
and prints the host, port, user and the generated password to give your
Remote Desktop client. The password is the target's own, valid until the
request expires. It runs until Ctrl-C, which terminates the session.

` + requestsHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, req, target, err := heldTarget(args[0])
			if err != nil {
				return err
			}
			var password string
			if target.Windows {
				// Read before the tunnel opens: a damaged store should stop
				// the command, not leave a tunnel with no way to log in.
				if password, err = store.Password(req.ID, target.InstanceID); err != nil {
					return err
				}
			}
			return tunnel(cmd.Context(), cmd, &f, target.InstanceID, &req, 3389, localPort, func(a net.Addr, s *connect.Session) {
				host, port, _ := net.SplitHostPort(a.String())
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "Remote Desktop to %s through session %s\n", target.InstanceID, s.ID)
				fmt.Fprintf(w, "  Host:     %s\n  Port:     %s\n  User:     %s\n", host, port, req.Username)
				if target.Windows {
					fmt.Fprintf(w, "  Password: %s\n", password)
				} else {
					fmt.Fprintf(w, "  Password: none: %s is a Linux target of access request %s; connect with passport ssh\n", target.InstanceID, req.ID)
				}
				fmt.Fprintf(w, "  Expires:  %s\nPress Ctrl-C to stop.\n", req.ExpiresAt.UTC().Format("2006-01-02 15:04:05 MST"))
			})
		},
	}
	cmd.Flags().IntVar(&localPort, "local-port", 0, "the local port on 127.0.0.1 (default: a free one)")
	f.register(cmd)
	return cmd
}
