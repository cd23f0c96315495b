package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, export and verify the audit trail",
		Long: `Every request, provisioning per host, extension, revocation (by whom or by
what) and failure is an event in the ledger's audit trail. Each event
carries the hash of the one before it, so a changed, removed or reordered
event is detected by verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAuditListCommand(), newAuditShowCommand(), newAuditExportCommand(), newAuditVerifyCommand())
	return cmd
}

// auditFilter is the filter flags list and export share.
type auditFilter struct {
	person, target, request string
	since, until            string
}

func (a *auditFilter) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.person, "person", "", "events by or about this person (SAML subject or reconciler name)")
	cmd.Flags().StringVar(&a.target, "target", "", "events on this instance id")
	cmd.Flags().StringVar(&a.request, "request", "", "events of this access request (ar-...)")
	cmd.Flags().StringVar(&a.since, "since", "", "events at or after this time: RFC 3339 (2026-11-24T09:00:00Z) or an age (24h)")
	cmd.Flags().StringVar(&a.until, "until", "", "events before this time: RFC 3339 or an age")
}

func (a *auditFilter) filter(now time.Time) (ledger.Filter, error) {
	f := ledger.Filter{Person: a.person, Target: a.target, GrantID: a.request}
	var err error
	if f.Since, err = parseWhen("--since", a.since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseWhen("--until", a.until, now); err != nil {
		return f, err
	}
	return f, nil
}

// parseWhen reads a point in time: RFC 3339, or an age before now.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: give a time as 2026-11-24T09:00:00Z or an age such as 24h", flag, s)
}

func newAuditListCommand() *cobra.Command {
	var (
		f ledgerFlags
		a auditFilter
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := a.filter(time.Now())
			if err != nil {
				return err
			}
			l, _, err := f.open(cmd.Context(), nil, false)
			if err != nil {
				return err
			}
			defer l.Close()
			events, err := l.Events(cmd.Context(), filter)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tREQUEST\tTARGET\tDETAIL")
			for _, e := range events {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), oneLine(e.Actor, 60), e.Action,
					dash(e.GrantID), dash(e.Target), oneLine(e.Detail, 100))
			}
			return w.Flush()
		},
	}
	f.register(cmd)
	a.register(cmd)
	return cmd
}

func newAuditShowCommand() *cobra.Command {
	var f ledgerFlags
	cmd := &cobra.Command{
		Use:   "show <event>",
		Short: "Show one audit event in full, with its hashes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || seq < 1 {
				return fmt.Errorf("event %q: give an event's number (SEQ in passport audit list)", oneLine(args[0], 40))
			}
			l, _, err := f.open(cmd.Context(), nil, false)
			if err != nil {
				return err
			}
			defer l.Close()
			events, err := l.Events(cmd.Context(), ledger.Filter{})
			if err != nil {
				return err
			}
			for _, e := range events {
				if e.Seq == seq {
					printEvent(cmd.OutOrStdout(), e)
					return nil
				}
			}
			return fmt.Errorf("the audit trail has no event %d", seq)
		},
	}
	f.register(cmd)
	return cmd
}

func printEvent(w io.Writer, e ledger.Event) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"event", strconv.FormatInt(e.Seq, 10)},
		{"time", e.Time.UTC().Format(time.RFC3339Nano)},
		{"actor", e.Actor},
		{"action", string(e.Action)},
		{"request", dash(e.GrantID)},
		{"target", dash(e.Target)},
		{"subject", dash(e.Subject)},
		{"detail", dash(e.Detail)},
		{"prev_hash", e.PrevHash},
		{"hash", e.Hash},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], oneLine(row[1], 4096))
	}
	tw.Flush()
}

func newAuditExportCommand() *cobra.Command {
	var (
		f ledgerFlags
		a auditFilter
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write audit events as JSON lines, for a SIEM",
		Long: `Writes one JSON object per event, oldest first, with its seq, prev_hash and
hash. An export without filters is the whole chain, which a receiver can
verify on its own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := a.filter(time.Now())
			if err != nil {
				return err
			}
			l, _, err := f.open(cmd.Context(), nil, false)
			if err != nil {
				return err
			}
			defer l.Close()
			return l.Export(cmd.Context(), cmd.OutOrStdout(), filter)
		},
	}
	f.register(cmd)
	a.register(cmd)
	return cmd
}

func newAuditVerifyCommand() *cobra.Command {
	var f ledgerFlags
	var rf recordingFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit trail's hash chain; exit non-zero naming the first broken event",
		Long: `Reads the whole trail and checks that every event is intact and in its
place. On success it prints the last event's number and hash: keep them
where the ledger's writers cannot change them (a SIEM, a ticket), since
removing events from the end leaves a shorter chain that still verifies.

With --recordings-bucket it then reads every session recording the ledger
indexes and checks its SHA-256 against the index and against the digest
the trail recorded when it was collected, naming each recording changed,
missing or re-indexed since.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, clients, err := f.open(cmd.Context(), nil, rf.bucket != "")
			if err != nil {
				return err
			}
			defer l.Close()
			st, err := rf.store(clients)
			if err != nil {
				return err
			}
			if err := l.Verify(cmd.Context()); err != nil {
				var broken *ledger.BrokenChainError
				if errors.As(err, &broken) {
					return fmt.Errorf("%w\nthe trail cannot be trusted from event %d on: compare with an export kept elsewhere", err, broken.Seq)
				}
				return err
			}
			head, err := l.Head(cmd.Context())
			if err != nil {
				return err
			}
			if head.Seq == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "audit trail is empty")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "audit trail intact: %d events, last %s\n", head.Seq, head.Hash)
			}
			if st == nil {
				return nil
			}
			return verifyRecordings(cmd.Context(), cmd.OutOrStdout(), l, st)
		},
	}
	f.register(cmd)
	rf.register(cmd, false)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a stored string on one terminal line: an event's fields
// come from requesters and hosts, and a control character must not rewrite
// what the reader sees.
func oneLine(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			b.WriteString("…")
			break
		}
		// Not printable covers control characters, line separators and
		// invisible formatting (bidi overrides) alike.
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
