package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// broker makes, changes and ends access requests: the Passport service
// (--server), or the access core run here with the person's own AWS
// credentials (direct mode). The commands print and keep the results the
// same way whichever it is.
type broker interface {
	create(ctx context.Context, in createInput) (made, error)
	extend(ctx context.Context, id string, d time.Duration) (api.Request, error)
	end(ctx context.Context, id string) (api.Request, error)
	list(ctx context.Context, all bool, state string) ([]api.Request, error)
	// server is the service's URL; empty in direct mode.
	server() string
	close() error
}

// createInput is a checked `request create`.
type createInput struct {
	targets  []string
	tags     map[string]string
	reason   string
	duration time.Duration
	sudo     bool
	// breakGlass asks for access at once where policy lets the caller
	// break the glass (the service only).
	breakGlass bool
	key        requestKey
	// idempotencyKey makes a retry of the same create find the request
	// the first one made instead of granting twice.
	idempotencyKey string
	// wait waits for a request that needs approval until it is decided,
	// and picks up the same request an earlier create left waiting;
	// progress hears what it waits for.
	wait     bool
	progress func(api.Request)
}

// made is a created request as the commands keep it.
type made struct {
	req api.Request
	// passwords are the Windows targets' passwords, opened here.
	passwords map[string]string
	// names are the targets' computer names, by instance id, where known.
	names map[string]string
	// replayed says an earlier call with the same idempotency key made
	// the request, so this one's key pair was not the one signed.
	replayed bool
	// key, when set, is the key the request was made with, where it is
	// not this run's: an earlier create's, picked up as it waited.
	key *requestKey
}

// brokerFlags choose and reach the broker.
type brokerFlags struct {
	srv    serverFlags
	direct directFlags
}

func (f *brokerFlags) register(cmd *cobra.Command) {
	f.srv.register(cmd)
	f.direct.register(cmd)
}

// open returns the service's broker when a server is named, else direct
// mode's.
func (f *brokerFlags) open(ctx context.Context) (broker, error) {
	if f.srv.on() {
		ca, err := absPath(f.srv.ca)
		if err != nil {
			return nil, fmt.Errorf("--server-ca: %w", err)
		}
		c, err := f.srv.signedIn(ctx, &awsconfig.Settings{Region: f.direct.region, Profile: f.direct.profile})
		if err != nil {
			return nil, err
		}
		return &serviceBroker{c: c, url: f.srv.server(), ca: ca}, nil
	}
	return f.direct.open(ctx)
}

// call opens the broker, makes one call of it, and says what to do about
// its error.
func (f *brokerFlags) call(ctx context.Context, do func(broker) (api.Request, error)) (api.Request, error) {
	b, err := f.open(ctx)
	if err != nil {
		return api.Request{}, err
	}
	defer b.close()
	r, err := do(b)
	if err != nil {
		return r, brokerError(b, err)
	}
	return r, nil
}

func newRequestCreateCommand() *cobra.Command {
	var (
		f                               brokerFlags
		targets, tags                   []string
		reason, duration, publicKey, ik string
		sudo, breakGlass, wait          bool
	)
	cmd := &cobra.Command{
		Use:   "create (--target ID... | --tag KEY=VALUE...) --reason TEXT [--duration 2h] [--sudo] [--public-key FILE]",
		Short: "Ask for access to servers, and keep it for ssh, tunnel, rdp and ssh-config",
		Long: `create asks for time-boxed access to the targets, named by instance id
(--target, repeatable) or by tags every target carries (--tag, repeatable).
Policy decides whether you may have it; then a short-lived user is made on
each target, with an SSH certificate for your key on Linux and a password
on Windows.

Your key stays yours: --public-key names your own public key (its private
half beside it is used by passport ssh), or a fresh ed25519 pair is made
and kept with the request (mode 0600). Windows passwords are sealed by each
host to a key made here for this call, so only this command can read them.

With --server (or PASSPORT_SERVER) the Passport service grants it, and you
need no AWS permission: you are signed in as the person passport login
--server signed in, or else as the machine whose AWS credentials are at
hand, where the service lets machines sign in. Each call carries an
Idempotency-Key (--idempotency-key, or a fresh one), so a retried call
does not grant twice. Without a server (direct mode) your own AWS
credentials grant it: they need Run Command on the targets, the CA's KMS
key (--ca) and the ledger.

The request is kept for the connect commands: passport ssh, rdp, tunnel,
proxy and ssh-config use it at once.

` + requestsHelp,
		Example: `  passport request create --server https://passport.example.com \
    --target i-0123456789abcdef0 --reason "INC-4242 disk full on web-1" --duration 2h
  passport request create --tag Env=staging --tag Team=web --reason "CHG-77 deploy" \
    --public-key ~/.ssh/id_ed25519.pub --sudo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := checkCreate(targets, tags, reason, duration, ik)
			if err != nil {
				return err
			}
			in.sudo, in.breakGlass, in.wait = sudo, breakGlass, wait
			in.progress = func(r api.Request) {
				fmt.Fprintf(cmd.ErrOrStderr(), "passport: access request %s waits for %s\n", r.ID, client.WaitingFor(r))
			}
			if in.key, err = loadRequestKey(publicKey); err != nil {
				return err
			}
			if in.idempotencyKey == "" {
				in.idempotencyKey = "passport-cli-" + rand.Text()
			}
			b, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			m, err := b.create(cmd.Context(), in)
			var partial *partialError
			if errors.As(err, &partial) {
				// Access was granted; what could be delivered is kept.
				return errors.Join(keepCreated(cmd, b, in, partial.made), err)
			}
			if err != nil {
				return brokerError(b, err)
			}
			return keepCreated(cmd, b, in, m)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&targets, "target", nil, "an instance id to reach (repeatable, or comma-separated)")
	fl.StringArrayVar(&tags, "tag", nil, "KEY=VALUE: reach the online instances carrying every --tag (repeatable)")
	fl.StringVar(&reason, "reason", "", "why you need access, for policy and the audit trail, e.g. \"INC-4242 disk full on web-1\" (required)")
	fl.StringVar(&duration, "duration", "1h", "how long access lasts, e.g. 45m or 2h (policy may cap it; 12h at most)")
	fl.BoolVar(&sudo, "sudo", false, "ask for sudo on Linux targets (Administrators on Windows)")
	fl.BoolVar(&wait, "wait", false, "when policy grants the request only with approval, wait until it is decided (and pick up the same request an earlier create left waiting) instead of returning at once")
	fl.BoolVar(&breakGlass, "break-glass", false, "in an emergency, ask for access at once where policy lets you break the glass: everyone is told at once, and someone else must review it afterwards (the service only)")
	fl.StringVar(&publicKey, "public-key", "", "your own SSH public key, e.g. ~/.ssh/id_ed25519.pub (default: make a fresh key pair for this request)")
	fl.StringVar(&ik, "idempotency-key", "", "a key of your own that makes this create safe to run again: a repeat finds the request instead of granting twice (default: a fresh one per run)")
	f.register(cmd)
	return cmd
}

// checkCreate checks create's flags, naming the one at fault.
func checkCreate(targets, tags []string, reason, duration, idempotencyKey string) (createInput, error) {
	in := createInput{reason: reason, idempotencyKey: idempotencyKey}
	switch {
	case strings.TrimSpace(reason) == "":
		return in, errors.New(`--reason is required: say why, for policy and the audit trail, e.g. --reason "INC-4242 disk full on web-1"`)
	case len(targets) == 0 && len(tags) == 0:
		return in, errors.New("name what to reach: --target INSTANCE_ID (repeatable) or --tag KEY=VALUE (repeatable)")
	case len(targets) > 0 && len(tags) > 0:
		return in, errors.New("--target and --tag do not go together: name the instances, or the tags they all carry")
	}
	if err := access.CheckReason(reason); err != nil {
		return in, fmt.Errorf("--reason: %w", err)
	}
	for _, t := range targets {
		if !connect.IsInstanceID(t) {
			return in, fmt.Errorf("--target %.64q is not an instance id: write it like i-0123456789abcdef0 (or mi-... for a hybrid node)", t)
		}
		if slices.Contains(in.targets, t) {
			return in, fmt.Errorf("--target %s is given twice", t)
		}
		in.targets = append(in.targets, t)
	}
	if len(tags) > 0 {
		in.tags = map[string]string{}
	}
	for _, kv := range tags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return in, fmt.Errorf("--tag %.64q: write KEY=VALUE, e.g. --tag Env=staging", kv)
		}
		if _, dup := in.tags[k]; dup {
			return in, fmt.Errorf("--tag %.64q is given twice: an instance carries one value per tag", k)
		}
		in.tags[k] = v
	}
	d, err := parseWindow("--duration", duration)
	if err != nil {
		return in, err
	}
	in.duration = d
	if len(idempotencyKey) > 128 || strings.ContainsFunc(idempotencyKey, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return in, errors.New("--idempotency-key must be 1 to 128 printable ASCII characters without spaces")
	}
	return in, nil
}

// parseWindow reads a window's length from flag (or argument) name.
func parseWindow(name, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %.64q is not a length of time: write it like 45m, 2h or 1h30m", name, s)
	}
	if err := access.CheckDuration(d); err != nil {
		return 0, fmt.Errorf("%s %s: %w", name, s, err)
	}
	return d, nil
}

// brokerError adds what to do to an error a broker returned.
func brokerError(b broker, err error) error {
	if b.server() != "" {
		return serviceError(b.server(), err)
	}
	return err
}

// keepCreated stores a created request for the connect commands and
// prints it.
func keepCreated(cmd *cobra.Command, b broker, in createInput, m made) error {
	store, err := requestStore()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	r := m.req
	if m.key != nil {
		in.key = *m.key
	}
	switch {
	case r.State == "pending" && r.Approval != nil:
		fmt.Fprintf(out, "Access request %s waits for %s until %s; nothing is done on its hosts until then, and its window starts at the last approval.\n",
			r.ID, approvers(r.Approval), r.Approval.Deadline.UTC().Format(time.RFC3339))
		fmt.Fprintf(out, "An approver runs: passport approve %s\n", r.ID)
		fmt.Fprintln(out, "Run the same request create with --wait to wait for it and keep it here once granted.")
		return nil
	case r.State == "denied":
		why, _ := client.Denied(r)
		return fmt.Errorf("access request %s was denied by %s", r.ID, why)
	case r.Approval != nil && (r.State == "expired" || r.State == "revoked") && r.Username == "":
		return fmt.Errorf("access request %s was not approved: it is %s (its approval deadline passed, or it was withdrawn); ask again", r.ID, r.State)
	}
	if r.State != string(access.Active) {
		printRequest(out, r, m.names)
		return fmt.Errorf("access request %s, made by an earlier call with this idempotency key, is %s: ask again with another --idempotency-key", r.ID, r.State)
	}
	if !sameKey(r.PublicKey, in.key.line) {
		// An earlier call with this idempotency key made the request, for
		// the key that call brought; this run's key was never signed.
		if _, err := store.Get(r.ID); err == nil {
			fmt.Fprintf(out, "Access request %s was made by an earlier call with this idempotency key; it is already kept here.\n", r.ID)
			printRequest(out, r, m.names)
			return nil
		}
		return fmt.Errorf("access request %s was made by an earlier call with this idempotency key, for another key, which this machine does not hold: end it (passport request end %s) and ask again with a new key", r.ID, r.ID)
	}
	held := heldRequest(r, m.names, b.server(), serverCA(b))
	held.IdentityFile = in.key.identityFile
	passwords := map[string]string{}
	for _, t := range held.Targets {
		if pw, ok := m.passwords[t.InstanceID]; ok && t.Windows {
			passwords[t.InstanceID] = pw
		}
	}
	if err := store.Save(held, connect.Credential{PrivateKey: in.key.privatePEM, Certificate: r.Certificate, Passwords: passwords}); err != nil {
		return fmt.Errorf("access request %s was granted but could not be kept here (%w): end it with passport request end %s", r.ID, err, r.ID)
	}
	fmt.Fprintf(out, "Access request %s granted to %s.\n", r.ID, r.Requester)
	printRequest(out, r, m.names)
	for _, t := range held.Targets {
		if t.Windows && passwords[t.InstanceID] == "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "passport: warning: no password for Windows target %s is kept here (it went to the call that made the request): end the request and ask again to log on there\n", t.InstanceID)
		}
	}
	if len(held.Targets) > 0 {
		fmt.Fprintf(out, "Connect with: passport %s %s\n", connectVerb(held.Targets[0]), targetName(held.Targets[0]))
	}
	return nil
}

func connectVerb(t connect.Target) string {
	if t.Windows {
		return "rdp"
	}
	return "ssh"
}

func targetName(t connect.Target) string {
	if t.Name != "" {
		return t.Name
	}
	return t.InstanceID
}

// serverCA is the CA bundle a service broker trusts, to keep with its
// requests for the connect commands.
func serverCA(b broker) string {
	if s, ok := b.(*serviceBroker); ok {
		return s.ca
	}
	return ""
}

// heldRequest is r as the request store keeps it: its active targets.
func heldRequest(r api.Request, names map[string]string, server, ca string) connect.Request {
	held := connect.Request{ID: r.ID, Username: r.Username, ExpiresAt: r.ExpiresAt, Server: server, ServerCA: ca}
	for _, t := range r.Targets {
		if t.Status != string(access.Active) {
			continue
		}
		held.Targets = append(held.Targets, connect.Target{InstanceID: t.InstanceID, Name: names[t.InstanceID], Address: t.Address, Windows: t.Platform == access.Windows})
	}
	return held
}

// printRequest prints a request and each of its targets.
func printRequest(w io.Writer, r api.Request, names map[string]string) {
	fmt.Fprintf(w, "  user %s, %s, until %s (%s)%s\n", r.Username, r.State, r.ExpiresAt.UTC().Format(time.RFC3339), r.Duration, map[bool]string{true: ", with sudo"}[r.Sudo])
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, t := range r.Targets {
		name := names[t.InstanceID]
		detail := t.Status
		if t.Detail != "" {
			detail += ": " + t.Detail
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.InstanceID, name, t.Platform, detail)
	}
	tw.Flush()
}

func newRequestExtendCommand() *cobra.Command {
	var (
		f    brokerFlags
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "extend ID DURATION [--wait]",
		Short: "Make a request's window DURATION long from its start (longer or shorter)",
		Long: `extend moves the end of access request ID's window to its start plus
DURATION: longer (policy is asked again) or shorter. A new certificate is
issued for the same key and kept for the connect commands.

Through the Passport service, a longer window that policy grants only
with approval waits for it while the current window stands; --wait waits
until it is decided.`,
		Example: "  passport request extend ar-0123456789abcdef 3h",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := requestID(args[0])
			if err != nil {
				return err
			}
			d, err := parseWindow("DURATION", args[1])
			if err != nil {
				return err
			}
			r, err := f.call(cmd.Context(), func(b broker) (api.Request, error) {
				r, err := b.extend(cmd.Context(), id, d)
				sb, service := b.(*serviceBroker)
				if err != nil || !wait || !service || !client.Waiting(r) {
					return r, err
				}
				return sb.c.Wait(cmd.Context(), id, func(r api.Request) {
					fmt.Fprintf(cmd.ErrOrStderr(), "passport: the longer window of access request %s waits for %s\n", r.ID, client.WaitingFor(r))
				})
			})
			if err != nil {
				return err
			}
			if longer := r.IssuedAt.Add(d); r.State == string(access.Active) && r.ExpiresAt.Before(longer) {
				if r.Extension != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "The longer window of access request %s, until %s, waits for %s until %s; the current window, until %s, stands.\n",
						r.ID, r.Extension.ExpiresAt.UTC().Format(time.RFC3339), approvers(&r.Extension.Approval), r.Extension.Approval.Deadline.UTC().Format(time.RFC3339), r.ExpiresAt.UTC().Format(time.RFC3339))
					fmt.Fprintf(cmd.OutOrStdout(), "An approver runs: passport approve %s\nRun the same request extend with --wait to wait for it and keep the new certificate here.\n", r.ID)
					return nil
				}
				if wait {
					return fmt.Errorf("the longer window of access request %s was denied, or had no decision in time: the window still ends %s (passport request list --all shows the request; its audit trail says why)", r.ID, r.ExpiresAt.UTC().Format(time.RFC3339))
				}
			}
			store, err := requestStore()
			if err != nil {
				return err
			}
			if _, err := store.Get(id); err == nil {
				if err := store.Renew(id, r.ExpiresAt, r.Certificate); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Access request %s now ends %s.\n", r.ID, r.ExpiresAt.UTC().Format(time.RFC3339))
			printRequest(cmd.OutOrStdout(), r, nil)
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "when policy grants the longer window only with approval, wait until it is decided instead of returning at once")
	f.register(cmd)
	return cmd
}

func newRequestEndCommand() *cobra.Command {
	var f brokerFlags
	cmd := &cobra.Command{
		Use:   "end ID",
		Short: "End an access request now: its users leave every target",
		Long: `end revokes access request ID now: the short-lived user is removed from
every target with its processes, the certificate is revoked, and the
request is forgotten here. Through the service you may end your own
requests, and others' where policy lets you.`,
		Example: "  passport request end ar-0123456789abcdef",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := requestID(args[0])
			if err != nil {
				return err
			}
			r, err := f.call(cmd.Context(), func(b broker) (api.Request, error) { return b.end(cmd.Context(), id) })
			if err != nil {
				return err
			}
			store, err := requestStore()
			if err != nil {
				return err
			}
			if err := store.Remove(id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Access request %s is %s.\n", r.ID, r.State)
			printRequest(cmd.OutOrStdout(), r, nil)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// requestID checks a request id argument.
func requestID(s string) (string, error) {
	if !access.ValidGrantID(s) {
		return "", fmt.Errorf("%.64q is not an access request id: they look like ar-0123456789abcdef (passport request list shows yours)", s)
	}
	return s, nil
}
