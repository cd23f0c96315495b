package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Break-glass grants are given at once and owe a review: someone other
// than the requester, whom policy lets approve the request, records
// within the configured time that it was right. Until then the grant is
// listed as unreviewed, and once overdue it is announced again every
// ledger.ReviewReminderEvery.

func (s *Service) reviewWithin() time.Duration {
	if s.approvals != nil && s.approvals.ReviewWithin > 0 {
		return s.approvals.ReviewWithin
	}
	return DefaultReviewWithin
}

// Review records by's review of break-glass grant id, open or closed,
// with a comment (required). Nobody reviews their own grant, and only
// someone policy lets approve it may.
func (s *Service) Review(ctx context.Context, by Approver, id, comment string) (*Grant, error) {
	if err := checkComment(comment, true); err != nil {
		return nil, err
	}
	s = s.as(by.Name)
	for attempt := 1; ; attempt++ {
		g, rec, err := s.Load(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case !g.BreakGlass || g.Review == nil:
			return nil, classed(Conflict, fmt.Errorf("request %s was not break-glass access: it owes no review", id))
		case g.Review.Done():
			return nil, classed(Conflict, fmt.Errorf("request %s was reviewed by %s at %s already", id, g.Review.By, g.Review.At.UTC().Format(time.RFC3339)))
		}
		if err := s.mayApprove(ctx, by, g, true); err != nil {
			return nil, err
		}
		g.Review.By, g.Review.Kind, g.Review.At, g.Review.Comment = by.Name, by.kind(), s.now().UTC(), comment
		err = s.commit(ctx, g, rec, rec.State, "")
		if errors.Is(err, ledger.ErrConflict) && attempt < maxRecordRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		late := ""
		if g.Review.At.After(g.Review.Due) {
			late = fmt.Sprintf(" (due %s)", g.Review.Due.UTC().Format(time.RFC3339))
		}
		return g, s.event(ctx, g, ledger.ActionReviewed, "", "break-glass access reviewed"+late+": "+comment)
	}
}

// RemindReview announces that break-glass grant id's review is overdue,
// when it is due for such a notice (ledger.Review.NextReminder), and
// reports whether it did. by is who announces it (the reconciler).
func (s *Service) RemindReview(ctx context.Context, by, id string) (bool, error) {
	s = s.as(by)
	for attempt := 1; ; attempt++ {
		g, rec, err := s.Load(ctx, id)
		if err != nil {
			return false, err
		}
		next := g.Review.NextReminder()
		if !g.BreakGlass || next.IsZero() || s.now().Before(next) {
			return false, nil
		}
		g.Review.Reminded = s.now().UTC()
		err = s.commit(ctx, g, rec, rec.State, "")
		if errors.Is(err, ledger.ErrConflict) && attempt < maxRecordRetries {
			continue
		}
		if err != nil {
			return false, err
		}
		return true, s.event(ctx, g, ledger.ActionReviewOverdue, "", fmt.Sprintf("break-glass access by %s was due for review by %s and has none", g.Requester, g.Review.Due.UTC().Format(time.RFC3339)))
	}
}
