package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// serverFlags say which Passport service a command calls. Without a
// server a command runs in direct mode, with the person's own AWS
// credentials, as it did before there was a service.
type serverFlags struct {
	url string
	ca  string
	// notify is where a command says it acts as a machine; nowhere when
	// nil.
	notify io.Writer
}

func (f *serverFlags) register(cmd *cobra.Command) {
	f.notify = cmd.ErrOrStderr()
	cmd.Flags().StringVar(&f.url, "server", os.Getenv(client.EnvServer), "the Passport service's URL, https://passport.example.com (env "+client.EnvServer+"); without it, direct mode")
	cmd.Flags().StringVar(&f.ca, "server-ca", os.Getenv(client.EnvServerCA), "PEM bundle the service's TLS certificate chains to, for a private CA (env "+client.EnvServerCA+")")
}

// on says whether a service was named.
func (f *serverFlags) on() bool { return f.url != "" }

// chosen says whether a command that also has a direct mode of its own
// (login, whoami, logout) goes to the service: a direct-mode flag given
// on the command line wins over PASSPORT_SERVER from the environment, and
// is refused beside an explicit --server.
func (f *serverFlags) chosen(cmd *cobra.Command, direct ...string) (bool, error) {
	if !f.on() {
		return false, nil
	}
	for _, name := range direct {
		if !cmd.Flags().Changed(name) {
			continue
		}
		if cmd.Flags().Changed("server") {
			return false, fmt.Errorf("--%s is for direct sign-in: with --server the Passport service talks to the IdP itself; drop --%s, or drop --server", name, name)
		}
		return false, nil
	}
	return true, nil
}

// server is the service's URL as tokens and stored requests name it: the
// same service written with or without a trailing slash is one service.
func (f *serverFlags) server() string { return strings.TrimRight(f.url, "/") }

func (f *serverFlags) options() client.Options { return client.Options{CAFile: f.ca} }

// anonymous is a client of the service with no sign-in, for the login
// routes.
func (f *serverFlags) anonymous() (*client.Client, error) {
	if f.ca != "" {
		if _, err := os.Stat(f.ca); err != nil {
			return nil, fmt.Errorf("--server-ca: %w", err)
		}
	}
	c, err := client.New(f.server(), f.options())
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	return c, nil
}

// signedIn is a client of the service signed in as the caller: the
// person's token, or, when aws is given and no person signed in here, the
// machine's AWS identity.
func (f *serverFlags) signedIn(ctx context.Context, aws *awsconfig.Settings) (*client.Client, error) {
	if _, err := f.anonymous(); err != nil {
		return nil, err
	}
	s := client.SignIn{Options: f.options()}
	if aws != nil {
		s.Machine = machineConfig(*aws)
		s.MachineSignedIn = func(p api.Principal) {
			// Said on stderr, so a person who expected to act as themselves
			// sees at once that nobody is signed in here.
			if f.notify != nil {
				fmt.Fprintf(f.notify, "passport: nobody is signed in to %s here; acting as the machine %s (your AWS credentials)\n", f.server(), p.Name)
			}
		}
	}
	c, err := client.Open(ctx, f.server(), s)
	if err != nil {
		return nil, serviceError(f.server(), err)
	}
	return c, nil
}

// machineConfig is the AWS configuration a machine signs in with: only
// its credentials matter, since the service names the STS endpoint and
// region to sign for.
func machineConfig(s awsconfig.Settings) func(context.Context) (aws.Config, error) {
	return func(ctx context.Context) (aws.Config, error) {
		return awsconfig.LoadConfig(ctx, s)
	}
}

// serviceError says what a person does about a failed call: sign in
// again when the service no longer knows them; otherwise the service's
// own message, which already names the field or request at fault.
func serviceError(server string, err error) error {
	var e *api.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case api.CodeUnauthenticated:
		return fmt.Errorf("the Passport service at %s no longer accepts your sign-in (%s): run passport login --server %s", server, strings.TrimSuffix(e.Message, "."), server)
	case api.CodeDenied:
		return fmt.Errorf("denied by the Passport service: %w", err)
	case api.CodeRateLimited:
		return fmt.Errorf("the Passport service at %s asks you to slow down: %w", server, err)
	}
	return err
}

// absPath makes a file name absolute, so that it still names the same
// file when kept with a request and read from another directory.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}
