package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/rootfs"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
)

func newLabCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a local AWS with real hosts, for demos and tests",
		Long: `The lab is a local AWS on loopback that speaks the real wire protocols
(Systems Manager, with SigV4 checking) to sandbox Linux hosts: each its own
namespaces, users and files, with a real OpenSSH sshd on its own loopback
address. The real AWS SDKs, the AWS CLI and the Passport provider use it
unchanged; only the endpoint differs. Sandbox hosts need root.

Lab Windows hosts (--windows) are models: they run only Passport's shipped
PowerShell programs, by applying the programs' data to their own accounts,
and answer a lab password check on port 3389 instead of RDP (logon-check).`,
		// Without Args and RunE, cobra would print help and succeed for a
		// misspelt subcommand.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newLabUpCommand(), newLabDownCommand(), newLabLogonCheckCommand(), newLabRootfsCommand())
	return cmd
}

func defaultLabDir() string {
	if d := os.Getenv("PASSPORT_LAB_DIR"); d != "" {
		return d
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "state", "passport", "lab")
	}
	return filepath.Join(os.TempDir(), "passport-lab")
}

func newLabUpCommand() *cobra.Command {
	var (
		opts          lab.Options
		withService   bool
		serviceListen string
		logFile       string
		notifyConfig  notifyFlag
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the lab and keep it running until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// A bad notifications file is said before anything starts.
			if notifyConfig != "" && !withService {
				return errors.New("--notify-config is for the lab's Passport service: drop --service=false, or the file")
			}
			notices, err := notifyConfig.load()
			if err != nil {
				return err
			}
			l, err := lab.Start(ctx, opts)
			if err != nil {
				return err
			}
			defer l.Close()
			var svc *labService
			if withService {
				log := slog.New(slog.NewJSONHandler(io.Discard, nil))
				if logFile != "" {
					f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
					if err != nil {
						return err
					}
					defer f.Close()
					log = slog.New(slog.NewJSONHandler(f, nil))
				}
				if svc, err = startLabService(ctx, l, serviceListen, notices, log); err != nil {
					return err
				}
			}
			printLab(cmd.OutOrStdout(), l, svc)
			<-ctx.Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "passport lab: stopping every host and removing", l.Dir)
			var svcErr error
			if svc != nil {
				svcErr = svc.wait()
			}
			return errors.Join(svcErr, l.Close())
		},
	}
	cmd.Flags().IntVar(&opts.Hosts, "hosts", 3, "sandbox Linux hosts to boot (real sshd; needs root)")
	cmd.Flags().IntVar(&opts.ModelNodes, "model-nodes", 0, "model nodes to add (no OS behind them; for scale tests)")
	cmd.Flags().IntVar(&opts.WindowsHosts, "windows", 0, "lab Windows hosts to add (models: they run only Passport's shipped PowerShell and check passwords on port 3389 with a lab protocol, not RDP)")
	cmd.Flags().StringVar(&opts.Dir, "dir", defaultLabDir(), "directory for the lab's state (env PASSPORT_LAB_DIR)")
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:0", "address of the AWS endpoint")
	cmd.Flags().StringVar(&opts.Region, "region", "us-east-1", "region clients must sign for")
	cmd.Flags().BoolVar(&withService, "service", true, "also run the Passport service on the lab, as its service identity, over TLS from a lab CA")
	cmd.Flags().StringVar(&serviceListen, "service-listen", "127.0.0.1:0", "address of the Passport service")
	cmd.Flags().StringVar(&logFile, "service-log", "", "file the service logs to, as JSON lines (default: no log)")
	notifyConfig.register(cmd, "", "a notifications file for the lab's service, as passport serve takes it: watch approvals, grants and break-glass reach your own webhook or Slack (docs/guides/notifications.md)")
	cmd.Flags().StringSliceVar(&opts.Releases, "release", nil, "Debian releases the sandbox hosts run, in turn (bullseye, bookworm, trixie; built by passport lab rootfs build); default: the machine's own root")
	cmd.Flags().StringVar(&opts.Init, "init", "", "what release hosts boot: systemd (the release's own), lab (the lab's init); default: systemd where this machine allows it")
	cmd.Flags().DurationVar(&opts.WebsocketLifetime, "websocket-lifetime", 60*time.Minute, "how long a Session Manager websocket stays open before the lab closes it, as AWS does (clients resume)")
	cmd.Flags().DurationVar(&opts.WebsocketDrops, "websocket-drops", 0, "also drop Session Manager websockets at random, after this long on average (fault injection; 0 for never)")
	return cmd
}

func printLab(w io.Writer, l *lab.Lab, svc *labService) {
	fmt.Fprintf(w, "Passport lab is up: %d hosts, %d Windows hosts, %d model nodes. State in %s\n\n", len(l.Hosts), len(l.Windows), len(l.Models), l.Dir)
	fmt.Fprintf(w, "# Use it from another shell with: . %s\n", filepath.Join(l.Dir, "env.sh"))
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(w, "export %s=%s\n", k, v)
	}
	fmt.Fprintf(w, "\n%-10s %-66s %s\n", "IDENTITY", "ARN (sts get-caller-identity)", "MAY")
	for _, id := range []struct {
		name string
		c    lab.Credentials
		may  string
	}{
		{"operator", l.Operator, "anything; AWS_ACCESS_KEY_ID above (set-up, direct mode)"},
		{"service", l.Service, "what examples/iam/passport-service.json allows; PASSPORT_LAB_SERVICE_*"},
		{"requester", l.Requester, "nothing on the access path (passport-requester.json); PASSPORT_LAB_REQUESTER_*"},
	} {
		fmt.Fprintf(w, "%-10s %-66s %s\n", id.name, id.c.ARN, id.may)
	}
	if len(l.Hosts) > 0 {
		fmt.Fprintf(w, "\n%-20s %-8s %-18s %-20s %s\n", "INSTANCE", "NAME", "SSH", "PLATFORM", "TAGS")
		for _, h := range l.State().Hosts {
			fmt.Fprintf(w, "%-20s %-8s %-18s %-20s %s\n", h.InstanceID, h.Hostname, h.SSH, h.Platform, lab.SortedTags(h.Tags))
		}
	}
	if len(l.Windows) > 0 {
		fmt.Fprintf(w, "\n%-20s %-8s %-22s %s\n", "WINDOWS", "NAME", "LOGON CHECK (not RDP)", "TAGS")
		for _, h := range l.State().Windows {
			fmt.Fprintf(w, "%-20s %-8s %-22s %s\n", h.InstanceID, h.Hostname, h.RDP, lab.SortedTags(h.Tags))
		}
	}
	if l.IdP != nil {
		fmt.Fprintf(w, "\nSAML sign-in (passport login) at the lab IdP, metadata %s:\n", l.IdP.MetadataURL())
		for _, u := range l.IdP.Users() {
			fmt.Fprintf(w, "  %-8s password %-12s groups %s\n", u.Name, u.Password, strings.Join(u.Groups, ","))
		}
		fmt.Fprintln(w, "The lab's Cedar policy is in Parameter Store at "+lab.PolicyParameter+".")
	}
	if svc != nil {
		fmt.Fprintf(w, "\nThe Passport service runs at %s (TLS from the lab's CA, %s), as the service identity.\n"+
			"People sign in with passport login --server %s; machines with their AWS identity\n"+
			"(the requester identity may call nothing else on the access path).\n", svc.URL, svc.CAFile, svc.URL)
		fmt.Fprintf(w, "The Passport portal is at %s/ : sign in there as one of the people above. Browsers do not\n"+
			"know the lab's CA: trust %s, or accept the warning for this lab.\n", svc.URL, svc.CAFile)
	}
	fmt.Fprintln(w, "\nPress Ctrl-C to stop the lab; it removes every host it started.")
}

func newLabDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a lab, or clean up after one that was killed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.Down(dir); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "passport lab: nothing is left running from", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultLabDir(), "the lab's state directory (env PASSPORT_LAB_DIR)")
	return cmd
}

func newLabLogonCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logon-check <host:port> <user>",
		Short: "Check a Windows password at a lab Windows host's port 3389 (the password on stdin)",
		Long: `logon-check stands in for a Remote Desktop client against the lab's Windows
hosts, which answer a lab password check on port 3389, not RDP. Give it the
local end of passport rdp's tunnel (or a host's own address) and the user;
it reads the password from the first line of stdin, so that it never shows
in the process list, and says whether the host let the user on.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, user := args[0], args[1]
			line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading the password from stdin: %w", err)
			}
			password := strings.TrimRight(line, "\r\n")
			if password == "" {
				return errors.New("no password on stdin: pipe the password in, for example from passport rdp's output")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if err := winhost.Logon(ctx, addr, user, password); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: logon of %s accepted\n", addr, user)
			return nil
		},
	}
	return cmd
}

func newLabRootfsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rootfs",
		Short: "Build the Debian releases lab hosts can run (passport lab up --release)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var releases []string
	var cache string
	build := &cobra.Command{
		Use:   "build",
		Short: "Build releases' root filesystems with debootstrap, once, into a cache",
		Long: `build makes each release's root filesystem with debootstrap (minbase, then
openssh-server, sudo, cron, at, procps and systemd) from the Debian archive
this machine's apt uses, into a cache outside any checkout
(PASSPORT_ROOTFS_CACHE, by default /var/cache/passport/rootfs). A release
already built is left as it is, so running it again costs nothing. The
releases build in parallel; each takes a few minutes, most of it download.
It needs root and debootstrap.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			errs := make([]error, len(releases))
			logs := make([]bytes.Buffer, len(releases))
			var wg sync.WaitGroup
			for i, r := range releases {
				if _, err := rootfs.Lookup(r); err != nil {
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					var dir string
					dir, errs[i] = rootfs.Build(ctx, cache, r, &logs[i])
					if errs[i] == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", r, dir)
					}
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s", logs[i].String())
				}
			}
			return errors.Join(errs...)
		},
	}
	build.Flags().StringSliceVar(&releases, "release", []string{"bullseye", "bookworm", "trixie"}, "the releases to build (codenames or versions)")
	build.Flags().StringVar(&cache, "cache", rootfs.DefaultCache(), "where built releases are kept (env PASSPORT_ROOTFS_CACHE)")
	cmd.AddCommand(build)
	return cmd
}
