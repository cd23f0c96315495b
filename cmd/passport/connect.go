package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// connectFlags are what every connect command needs: where AWS is and
// where the person's requests are kept.
type connectFlags struct {
	region, profile string
}

func (f *connectFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "AWS profile (default: AWS_PROFILE)")
}

// args are the flags again, for a passport process started by OpenSSH.
func (f *connectFlags) args() []string {
	var a []string
	if f.region != "" {
		a = append(a, "--region", f.region)
	}
	if f.profile != "" {
		a = append(a, "--profile", f.profile)
	}
	return a
}

// sessions is where the sessions to a target of req are opened: through
// the Passport service that granted req, signed in as the person (or the
// machine) that asked, or, for a request made directly or none held, with
// the person's own AWS credentials.
func (f *connectFlags) sessions(ctx context.Context, req *connect.Request) (connect.SessionAPI, error) {
	if req != nil && req.Server != "" {
		srv := serverFlags{url: req.Server, ca: cmp.Or(req.ServerCA, os.Getenv(client.EnvServerCA))}
		c, err := srv.signedIn(ctx, &awsconfig.Settings{Region: f.region, Profile: f.profile})
		if err != nil {
			return nil, fmt.Errorf("access request %s was made through %s: %w", req.ID, req.Server, err)
		}
		return connect.ServiceSessions{Client: c, RequestID: req.ID}, nil
	}
	c, err := awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile})
	if err != nil {
		return nil, err
	}
	return c.SSM, nil
}

// requestStore is the requests a person holds, in Passport's config
// directory (client.ConfigDir) beside their service tokens.
func requestStore() (connect.Store, error) {
	d, err := client.ConfigDir()
	if err != nil {
		return connect.Store{}, err
	}
	return connect.Store{Dir: filepath.Join(d, "requests")}, nil
}

// openSSH is how this passport binary points OpenSSH at requests.
func (f *connectFlags) openSSH(store connect.Store, identity string) (connect.OpenSSH, error) {
	self, err := os.Executable()
	if err != nil {
		return connect.OpenSSH{}, fmt.Errorf("finding the passport binary for ProxyCommand: %w", err)
	}
	if identity != "" {
		if identity, err = filepath.Abs(identity); err != nil {
			return connect.OpenSSH{}, err
		}
	}
	return connect.OpenSSH{
		Store:        store,
		Proxy:        append([]string{self, "proxy"}, f.args()...),
		IdentityFile: identity,
	}, nil
}

// heldTarget returns the store and the live request you hold for target,
// or why there is none.
func heldTarget(target string) (connect.Store, connect.Request, connect.Target, error) {
	store, err := requestStore()
	if err != nil {
		return store, connect.Request{}, connect.Target{}, err
	}
	req, t, err := store.Find(target, time.Now())
	return store, req, t, err
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a TCP port (1-65535)", s)
	}
	return p, nil
}
