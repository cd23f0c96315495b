package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
)

// envRecordings names the directory of collected recordings for direct
// mode.
const envRecordings = "PASSPORT_RECORDINGS"

// recordingsDirFlag sets a recording.Dir catalog from a flag.
type recordingsDirFlag struct{ c *recording.Catalog }

func (f recordingsDirFlag) String() string {
	if f.c == nil || *f.c == nil {
		return ""
	}
	return fmt.Sprint(*f.c)
}

func (f recordingsDirFlag) Set(dir string) error {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("%q is not a directory of recordings (request/instance/session/)", dir)
	}
	*f.c = recording.Dir(dir)
	return nil
}

func (recordingsDirFlag) Type() string { return "dir" }

func newSessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List, play, export and search recorded sessions",
		Long: `Every login of a Passport user on a Linux target is recorded on the host
(sudo's I/O log, forced by sshd) and collected under its request. These
commands read what was collected.

Through the Passport service (--server or PASSPORT_SERVER) you see your own
requests' recordings, and others' where policy lets you view those
requests (the view action, for the recording's target). Directly, with
your own access to the recordings bucket and the ledger
(--recordings-bucket with --ledger), or to a copy of the bucket's
recordings/ prefix (--recordings DIR), you see everything there; each
recording read from the bucket must still be the object the ledger
indexed (size and SHA-256).

A recording is named request/instance/session, as list prints it; a
session name alone is enough where it is unique.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSessionsListCommand(), newSessionsPlayCommand(), newSessionsExportCommand(), newSessionsGrepCommand(), newSessionsDeleteCommand())
	return cmd
}

// sessionFlags choose where recordings are read: the service, the
// bucket with the ledger's index, or a directory.
type sessionFlags struct {
	srv serverFlags
	lf  ledgerFlags
	rf  recordingFlags
	dir string
	// changed names the sources given on the command line, which beat
	// those from the environment.
	changed map[string]bool
}

func (f *sessionFlags) register(cmd *cobra.Command) {
	f.srv.register(cmd)
	f.lf.register(cmd)
	f.rf.register(cmd, false)
	cmd.Flags().StringVar(&f.dir, "recordings", os.Getenv(envRecordings), "read recordings directly from this directory, a copy of the bucket's recordings/ prefix (env "+envRecordings+")")
}

// noteChanged records which sources the command line named.
func (f *sessionFlags) noteChanged(cmd *cobra.Command) {
	f.changed = map[string]bool{}
	for _, name := range []string{"server", "recordings-bucket", "recordings"} {
		f.changed[name] = cmd.Flags().Changed(name)
	}
}

func (f *sessionFlags) open(ctx context.Context) (recordings, error) {
	on := map[string]bool{"server": f.srv.on(), "recordings-bucket": f.rf.bucket != "", "recordings": f.dir != ""}
	var chosen []string
	for _, name := range []string{"server", "recordings-bucket", "recordings"} {
		if on[name] {
			chosen = append(chosen, name)
		}
	}
	if len(chosen) > 1 {
		// What the command line says beats what the environment says.
		var given []string
		for _, name := range chosen {
			if f.changed[name] {
				given = append(given, name)
			}
		}
		if len(given) != 1 {
			return nil, fmt.Errorf("recordings can be read from one place: give one of --%s", strings.Join(chosen, ", --"))
		}
		chosen = given
	}
	if len(chosen) == 0 {
		return nil, errors.New("give --server (or PASSPORT_SERVER) to read recordings through the Passport service, or, with your own access to them, --recordings-bucket with --ledger, or --recordings DIR for a copy of the bucket's recordings/")
	}
	switch chosen[0] {
	case "recordings":
		if st, err := os.Stat(f.dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--recordings %q is not a directory of recordings (request/instance/session/)", f.dir)
		}
		return direct{c: recording.Dir(f.dir)}, nil
	case "recordings-bucket":
		l, clients, err := f.lf.open(ctx, nil, true)
		if err != nil {
			return nil, fmt.Errorf("--recordings-bucket reads the ledger's index of recordings: %w", err)
		}
		st, err := f.rf.store(clients)
		if err != nil {
			l.Close()
			return nil, err
		}
		get := func(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
			if bucket != st.Bucket {
				return nil, fmt.Errorf("the ledger indexes it in bucket %s, not --recordings-bucket %s", bucket, st.Bucket)
			}
			b, err := st.Get(ctx, key)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		}
		return direct{c: recording.Bucket{Index: l, Get: get}, closer: l}, nil
	}
	// Signed in as the person, or, where nobody is, as the machine (a CI
	// job reading what its own requests did).
	c, err := f.srv.signedIn(ctx, &awsconfig.Settings{Region: f.lf.region, Profile: f.lf.profile})
	if err != nil {
		return nil, err
	}
	return viaService{c, f.srv.server()}, nil
}

// openCast opens the recording arg names as asciicast; closing it closes
// what it was read from.
func (f *sessionFlags) openCast(cmd *cobra.Command, arg string) (string, io.ReadCloser, error) {
	return f.openAs(cmd, arg, recordings.cast)
}

// openEvents opens the Windows event session arg names as JSON lines.
func (f *sessionFlags) openEvents(cmd *cobra.Command, arg string) (string, io.ReadCloser, error) {
	return f.openAs(cmd, arg, recordings.events)
}

func (f *sessionFlags) openAs(cmd *cobra.Command, arg string, as func(recordings, context.Context, string) (io.ReadCloser, error)) (string, io.ReadCloser, error) {
	f.noteChanged(cmd)
	r, err := f.open(cmd.Context())
	if err != nil {
		return "", nil, err
	}
	id, err := resolve(cmd.Context(), r, arg)
	if err == nil {
		var body io.ReadCloser
		if body, err = as(r, cmd.Context(), id); err == nil {
			return id, closeBoth{body, r}, nil
		}
	}
	r.close()
	return "", nil, err
}

// closeBoth closes a recording's stream and where it came from.
type closeBoth struct {
	io.ReadCloser
	from recordings
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	c.from.close()
	return err
}

// recordings is where a command reads recordings.
type recordings interface {
	close()
	list(ctx context.Context, f client.RecordingFilter) ([]api.Recording, error)
	cast(ctx context.Context, id string) (io.ReadCloser, error)
	events(ctx context.Context, id string) (io.ReadCloser, error)
	grep(ctx context.Context, re *regexp.Regexp, f client.RecordingFilter) (api.RecordingMatches, error)
}

// viaService reads recordings through the Passport service.
type viaService struct {
	c   *client.Client
	url string
}

func (viaService) close() {}

func (s viaService) list(ctx context.Context, f client.RecordingFilter) ([]api.Recording, error) {
	out, err := s.c.Recordings(ctx, f)
	return out, serviceErr(s.url, err)
}

func (s viaService) cast(ctx context.Context, id string) (io.ReadCloser, error) {
	out, err := s.c.RecordingCast(ctx, id)
	return out, serviceErr(s.url, err)
}

func (s viaService) events(ctx context.Context, id string) (io.ReadCloser, error) {
	out, err := s.c.RecordingEvents(ctx, id)
	return out, serviceErr(s.url, err)
}

func (s viaService) grep(ctx context.Context, re *regexp.Regexp, f client.RecordingFilter) (api.RecordingMatches, error) {
	out, err := s.c.GrepRecordings(ctx, re.String(), f)
	return out, serviceErr(s.url, err)
}

func serviceErr(url string, err error) error {
	if err == nil {
		return nil
	}
	return serviceError(url, err)
}

// direct reads a catalog itself: the operator's own access to the
// recordings.
type direct struct {
	c      recording.Catalog
	closer io.Closer
}

func (d direct) close() {
	if d.closer != nil {
		d.closer.Close()
	}
}

func (d direct) list(ctx context.Context, f client.RecordingFilter) ([]api.Recording, error) {
	refs, err := d.c.List(ctx, recording.Query{Request: f.Request, Instance: f.Target})
	if err != nil {
		return nil, err
	}
	out := make([]api.Recording, 0, len(refs))
	for _, r := range refs {
		a := api.Recording{ID: r.ID(), Request: r.Request, Target: r.Instance, Session: r.Session, Requester: r.Subject, User: r.User, Size: r.Size, SHA256: r.SHA256}
		if !r.Start.IsZero() {
			t := r.Start
			a.StartedAt = &t
		}
		if !r.End.IsZero() {
			t := r.End
			a.EndedAt = &t
		}
		out = append(out, a)
	}
	return out, nil
}

// open opens the recording id names.
func (d direct) open(ctx context.Context, id string) (*recording.Log, error) {
	ref, err := recording.ParseID(id)
	if err != nil {
		return nil, err
	}
	return d.c.Open(ctx, ref)
}

func (d direct) cast(ctx context.Context, id string) (io.ReadCloser, error) {
	l, err := d.open(ctx, id)
	if err != nil {
		return nil, err
	}
	if l.Info.EventLog {
		return nil, fmt.Errorf("%s: %w", id, recording.ErrEventLog)
	}
	events, err := l.Events()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer events.Close()
		pw.CloseWithError(recording.WriteAsciicast(pw, l.Info, events))
	}()
	return pr, nil
}

func (d direct) events(ctx context.Context, id string) (io.ReadCloser, error) {
	l, err := d.open(ctx, id)
	if err != nil {
		return nil, err
	}
	if !l.Info.EventLog {
		return nil, fmt.Errorf("%s is a terminal recording, not a Windows event log: export it with --format asciicast", id)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(l.EventLines(pw)) }()
	return pr, nil
}

func (d direct) grep(ctx context.Context, re *regexp.Regexp, f client.RecordingFilter) (api.RecordingMatches, error) {
	refs, err := d.c.List(ctx, recording.Query{Request: f.Request, Instance: f.Target})
	if err != nil {
		return api.RecordingMatches{}, err
	}
	found, truncated, problems, err := recording.Search(ctx, d.c, refs, re, maxGrepLines)
	out := api.RecordingMatches{Truncated: truncated, Searched: len(refs)}
	for _, m := range found {
		out.Matches = append(out.Matches, api.RecordingMatch{Recording: m.Ref.ID(), At: m.At.Seconds(), Input: m.Input, Line: m.Line})
	}
	for _, p := range problems {
		out.Problems = append(out.Problems, api.RecordingProblem{Recording: p.Ref.ID(), Message: p.Err.Error()})
	}
	return out, err
}

// maxGrepLines bounds a direct search's answer, as the service bounds
// its own.
const maxGrepLines = 1000

// resolve turns a session name into its request/instance/session, when
// it names one recording the caller may see.
func resolve(ctx context.Context, r recordings, arg string) (string, error) {
	if strings.Contains(arg, "/") {
		if _, err := recording.ParseID(arg); err != nil {
			return "", err
		}
		return arg, nil
	}
	all, err := r.list(ctx, client.RecordingFilter{})
	if err != nil {
		return "", err
	}
	var ids []string
	for _, x := range all {
		if x.Session == arg {
			ids = append(ids, x.ID)
		}
	}
	switch len(ids) {
	case 1:
		return ids[0], nil
	case 0:
		return "", fmt.Errorf("no recording you may see is named %q: passport sessions list shows them", arg)
	}
	return "", fmt.Errorf("%q names %d recordings (%s): give request/instance/session", arg, len(ids), strings.Join(ids, ", "))
}

func recordingFilterFlags(cmd *cobra.Command, f *client.RecordingFilter, host bool) {
	cmd.Flags().StringVar(&f.Request, "request", "", "only recordings of this access request (ar-...)")
	if host {
		cmd.Flags().StringVar(&f.Target, "host", "", "only recordings on this instance (i-...)")
	}
}

func newSessionsListCommand() *cobra.Command {
	var (
		sf sessionFlags
		f  client.RecordingFilter
	)
	cmd := &cobra.Command{
		Use:   "list [--request ID] [--host ID]",
		Short: "List recorded sessions, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf.noteChanged(cmd)
			r, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.close()
			list, err := r.list(cmd.Context(), f)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECORDING\tUSER\tREQUESTER\tSTARTED\tLASTED\tSIZE")
			for _, x := range list {
				started, lasted := "-", "-"
				if x.StartedAt != nil {
					started = x.StartedAt.UTC().Format(time.RFC3339)
					if x.EndedAt != nil {
						lasted = x.EndedAt.Sub(*x.StartedAt).Round(time.Second).String()
					}
				}
				size := "-"
				if x.Size > 0 {
					size = fmt.Sprint(x.Size)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, dash(x.User), dash(x.Requester), started, lasted, size)
			}
			return tw.Flush()
		},
	}
	recordingFilterFlags(cmd, &f, true)
	sf.register(cmd)
	return cmd
}

func newSessionsExportCommand() *cobra.Command {
	var (
		sf     sessionFlags
		format string
		output string
	)
	cmd := &cobra.Command{
		Use:   "export --format asciicast|jsonl SESSION",
		Short: "Write a recorded session as asciicast v2, or a Windows event session as JSON lines",
		Long: `export writes a terminal session as asciicast v2 (newline-delimited JSON: a
header, then [time, "o"|"i"|"r", data] events), which asciinema play,
asciinema cat and the asciinema web player read. Output of a session without
a terminal (a command, scp, sftp) has its line feeds shown as CR LF, and
stderr is output too, since asciicast has one output stream.

A Windows target's session is its Security log events of one logon (4624
logon, 4688 process creation with its command line where audited, 4634
logoff), not a screen recording: --format jsonl writes them as collected,
one JSON object a line. asciicast is for terminal sessions only.`,
		Example: `  passport sessions export --format asciicast ar-0123456789abcdef/i-0a1b2c3d4e5f67890/20261206-091500-Ab12Cd > s.cast
  asciinema play s.cast
  passport sessions export --format jsonl ar-0123456789abcdef/i-0fedcba9876543210/20261206-091500-3e7a01`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			open := sf.openCast
			switch format {
			case "asciicast":
			case "jsonl":
				open = sf.openEvents
			default:
				return fmt.Errorf("--format %q: use asciicast (v2) for a terminal session, jsonl for a Windows event session", format)
			}
			id, cast, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer cast.Close()
			w := cmd.OutOrStdout()
			if output != "" && output != "-" {
				f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if _, err := io.Copy(w, cast); err != nil {
				return fmt.Errorf("exporting %s: %w", id, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "asciicast", "the format: asciicast (v2), or jsonl for a Windows event session")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (mode 0600: recordings hold what people typed) instead of stdout")
	sf.register(cmd)
	return cmd
}

func newSessionsPlayCommand() *cobra.Command {
	var (
		sf    sessionFlags
		p     recording.Player
		speed float64
	)
	cmd := &cobra.Command{
		Use:   "play SESSION [--speed X] [--idle-limit D]",
		Short: "Play a recorded session in the terminal with its original timing",
		Long: `play shows what the session's terminal showed, when it showed it. --speed
scales the pace and --idle-limit shortens every pause longer than it.
While it plays: space pauses and resumes, "." shows the next output while
paused, q (or Ctrl-C) stops.`,
		Example: `  passport sessions play 20261206-091500-Ab12Cd --speed 2 --idle-limit 2s`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if speed <= 0 || speed > 1000 {
				return fmt.Errorf("--speed %v: give a factor above 0 and at most 1000 (2 plays twice as fast)", speed)
			}
			if p.IdleLimit < 0 {
				return fmt.Errorf("--idle-limit %v: give a duration of 0 (keep every pause) or more", p.IdleLimit)
			}
			p.Speed = speed
			id, body, err := sf.openCast(cmd, args[0])
			if err != nil {
				return err
			}
			defer body.Close()
			cast, err := recording.ReadAsciicast(body)
			if err != nil {
				return fmt.Errorf("recording %s: %w", id, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if restore := keyboard(&p); restore != nil {
				defer restore()
				fmt.Fprintf(cmd.ErrOrStderr(), "%s (space pauses, . steps, q quits)\r\n", cast.Header.Title)
			}
			err = p.Play(ctx, cmd.OutOrStdout(), recording.Info{Terminal: true}, cast)
			if errors.Is(err, recording.ErrStopped) || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().Float64Var(&speed, "speed", 1, "play this many times as fast")
	cmd.Flags().DurationVar(&p.IdleLimit, "idle-limit", 0, "shorten every pause longer than this to it, e.g. 2s (0 keeps every pause)")
	sf.register(cmd)
	return cmd
}

// keyboard gives the player the viewer's keys when stdin is a terminal,
// in raw mode so each key counts at once; it returns what puts the
// terminal back, or nil.
func keyboard(p *recording.Player) (restore func()) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil
	}
	keys := make(chan byte)
	go func() {
		defer close(keys)
		b := make([]byte, 1)
		for {
			if n, err := os.Stdin.Read(b); err != nil || n == 0 {
				return
			}
			keys <- b[0]
		}
	}()
	p.Keys = keys
	return func() { term.Restore(fd, old) }
}

func newSessionsGrepCommand() *cobra.Command {
	var (
		sf sessionFlags
		f  client.RecordingFilter
	)
	cmd := &cobra.Command{
		Use:   "grep PATTERN [--request ID]",
		Short: "Search recorded sessions for what was typed or printed",
		Long: `grep prints each line of the recordings you may see that PATTERN (a
regular expression, RE2 syntax) matches: what the person typed (in) and
what the session printed (out), as they would have seen it, with colours
and other escape sequences removed and typed lines as edited. Each line
names its recording and how far into the session it came.

A recording that cannot be read (damaged, or changed since it was
collected) is named on stderr, and the command fails after printing the
rest.`,
		Example: `  passport sessions grep 'rm -rf' --request ar-0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			re, err := regexp.Compile(args[0])
			if err != nil {
				return fmt.Errorf("PATTERN %q is not a regular expression (RE2 syntax): %w", args[0], err)
			}
			sf.noteChanged(cmd)
			r, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.close()
			out, err := r.grep(cmd.Context(), re, f)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, m := range out.Matches {
				dir := "out"
				if m.Input {
					dir = "in"
				}
				fmt.Fprintf(tw, "%s\t+%.1fs\t%s\t%s\n", m.Recording, m.At, dir, printable(m.Line))
			}
			tw.Flush()
			if out.Truncated {
				fmt.Fprintln(cmd.ErrOrStderr(), "passport: more lines matched than shown; narrow the pattern or give --request")
			}
			for _, p := range out.Problems {
				fmt.Fprintf(cmd.ErrOrStderr(), "passport: recording %s could not be searched: %s\n", p.Recording, p.Message)
			}
			if len(out.Problems) > 0 {
				return fmt.Errorf("%d recording(s) could not be searched", len(out.Problems))
			}
			return nil
		},
	}
	recordingFilterFlags(cmd, &f, true)
	sf.register(cmd)
	return cmd
}

// printable keeps a line from a recording from steering the viewer's
// terminal: control characters are shown escaped.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
