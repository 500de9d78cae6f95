package council

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// DefaultGuardTimeout bounds a Guard whose context has no deadline: the review and the wait for
// people together. People take minutes, so it is longer than DefaultTimeout.
const DefaultGuardTimeout = 10 * time.Minute

// GuardOutcome is how a guarded decision ended: its final status in lower case, or GuardTimedOut.
type GuardOutcome string

// The outcomes of Guard.
const (
	// GuardApproved: the agent may act (auto-approved by the council, or approved by people).
	GuardApproved GuardOutcome = "approved"
	// GuardRejected: rejected by the council, or by a person (with a comment).
	GuardRejected GuardOutcome = "rejected"
	// GuardExpired: nobody gave enough approvals before the decision expired.
	GuardExpired GuardOutcome = "expired"
	// GuardSuperseded: a later review by the same submitter followed this one up.
	GuardSuperseded GuardOutcome = "superseded"
	// GuardTimedOut: the guard's deadline passed while people had not decided yet. The decision
	// is still pending and may still be approved: it is not a rejection.
	GuardTimedOut GuardOutcome = "timed_out"
)

// GuardVerdict is Guard's answer: whether the agent may act, and why.
type GuardVerdict struct {
	// Allowed is true only when the decision ended APPROVED.
	Allowed bool
	// Outcome is how the decision ended, or GuardTimedOut.
	Outcome GuardOutcome
	// TimedOut is true when the guard stopped waiting at its deadline while the decision was
	// still pending.
	TimedOut bool
	// Reason is one sentence for a log or a person: who decided and why, e.g. `auto-approved by
	// the council: …`, `approved by alice ("ship it"), bob (2 of 2 approvals)`, `rejected by
	// alice: "not on a Friday"`, `expired at … with 0 of 1 approvals`, `timed out after 5000 ms:
	// … still pending`.
	Reason string
	// Decision is the decision as last seen, with the verdicts and status people gave it.
	Decision *councilv1.Decision
	// DecisionID is the decision's id (what approvers need).
	DecisionID string
	// DecisionType is the council's decision (AUTO_APPROVE, HUMAN_APPROVE, DEFER, REJECT, ESCALATE).
	DecisionType councilv1.DecisionType
	// Status is the decision's status.
	Status councilv1.DecisionStatus
	// ApprovedBy are the principals that approved, in the order their verdicts were counted.
	ApprovedBy []string
	// RejectedBy are the principals that rejected (a rejection always has a comment: see Verdicts).
	RejectedBy []string
	// Verdicts are every verdict people gave: who, approve or reject, the comment, when.
	Verdicts []*councilv1.Verdict
	// Conditions are the council's conditions: what the agent must respect if it acts.
	Conditions []string
}

// GuardOption configures Guard: every ReviewOption (WithRequestID, WithSupersedes; not DryRun),
// OnVote and OnDecision.
type GuardOption interface {
	applyGuard(*guardOptions)
}

type guardOptions struct {
	review     reviewOptions
	onDecision func(*councilv1.Decision)
}

func (o ReviewOption) applyGuard(g *guardOptions) { o(&g.review) }

type guardOptionFunc func(*guardOptions)

func (f guardOptionFunc) applyGuard(g *guardOptions) { f(g) }

// OnVote calls fn with each vote as soon as it is cast, in reviewer order, before the council's
// decision. fn runs on the caller's goroutine and is called once per reviewer, even when the
// review is retried (votes that a retry replays are not passed again). Review yields the same
// votes, with the decision id, to a caller that ranges over it.
func OnVote(fn func(*councilv1.Vote)) GuardOption {
	return guardOptionFunc(func(g *guardOptions) { g.review.onVote = fn })
}

// OnDecision calls fn with the council's decision as soon as it is made (its id is what approvers
// need), then again each time people change it while Guard waits (a verdict, the final status).
// fn runs on the caller's goroutine.
func OnDecision(fn func(*councilv1.Decision)) GuardOption {
	return guardOptionFunc(func(g *guardOptions) { g.onDecision = fn })
}

// Guard is the one call an agent makes before it acts. It submits the suggestion (passing each
// vote to OnVote as it is cast) and, if the council's decision waits for people (HUMAN_APPROVE,
// DEFER, ESCALATE), waits for their verdicts (reporting each change to OnDecision). It returns
// whether the agent may act and why:
//
//	v, err := client.Guard(ctx, suggestion, council.OnVote(func(v *councilv1.Vote) { … }))
//	if err != nil {
//		return err // the review failed: an *Error, as Review returns
//	}
//	if !v.Allowed {
//		return fmt.Errorf("council: not allowed (%s): %s", v.Outcome, v.Reason)
//	}
//
// Allowed is true only when the decision ended APPROVED. ctx bounds the whole guard (without a
// deadline, DefaultGuardTimeout does); the review is bounded by the WithReviewTimeout default
// too. A decision still pending when ctx's deadline passes gives a verdict with TimedOut set and
// a nil error. A review that fails, or a wait that fails otherwise, returns the error; cancelling
// ctx returns a CANCELED error.
func (c *Client) Guard(ctx context.Context, s *councilv1.Suggestion, opts ...GuardOption) (*GuardVerdict, error) {
	var o guardOptions
	for _, opt := range opts {
		opt.applyGuard(&o)
	}
	if o.review.dryRun {
		return nil, errors.New("council: Guard does not take DryRun: a dry run stores no decision to wait for")
	}
	started := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultGuardTimeout)
		defer cancel()
	}
	decision, err := c.guardReview(ctx, s, o.review)
	if err != nil {
		return nil, err
	}
	if o.onDecision != nil {
		o.onDecision(decision)
	}
	if isFinal(decision) {
		return guardVerdict(decision, 0), nil
	}
	err = c.awaitStates(ctx, decision.GetId(), decision, func() {}, func(d *councilv1.Decision) bool {
		decision = d
		if o.onDecision != nil {
			o.onDecision(d)
		}
		return true
	})
	switch {
	case err == nil:
		return guardVerdict(decision, 0), nil
	case Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		// The only deadline of the wait is the guard's own: the decision is still pending.
		return guardVerdict(decision, time.Since(started)), nil
	case errors.Is(err, context.Canceled) || Code(err) == codes.Canceled:
		return nil, FromRPCError(status.Error(codes.Canceled, "council: the guard was cancelled while the decision was pending"))
	}
	return nil, FromRPCError(err)
}

// guardReview runs Guard's review to its decision, bounded by the WithReviewTimeout default as
// well as by ctx (the guard's deadline is minutes; a review takes a fraction of a second).
func (c *Client) guardReview(ctx context.Context, s *councilv1.Suggestion, o reviewOptions) (*councilv1.Decision, error) {
	if c.cfg.reviewTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.reviewTimeout)
		defer cancel()
	}
	return decisionOf(c.review(ctx, s, o))
}

var outcomeOf = map[councilv1.DecisionStatus]GuardOutcome{
	councilv1.DecisionStatus_DECISION_STATUS_APPROVED:   GuardApproved,
	councilv1.DecisionStatus_DECISION_STATUS_REJECTED:   GuardRejected,
	councilv1.DecisionStatus_DECISION_STATUS_EXPIRED:    GuardExpired,
	councilv1.DecisionStatus_DECISION_STATUS_SUPERSEDED: GuardSuperseded,
}

// guardVerdict is the answer for d: final, or still pending after waiting `waited`.
func guardVerdict(d *councilv1.Decision, waited time.Duration) *GuardVerdict {
	st := statusOf(d)
	outcome, ok := outcomeOf[st]
	if !ok {
		outcome = GuardTimedOut
	}
	return &GuardVerdict{
		Allowed:      st == councilv1.DecisionStatus_DECISION_STATUS_APPROVED,
		Outcome:      outcome,
		TimedOut:     outcome == GuardTimedOut,
		Reason:       reasonOf(d, st, waited),
		Decision:     d,
		DecisionID:   d.GetId(),
		DecisionType: d.GetDecision(),
		Status:       st,
		ApprovedBy:   verdictsBy(d, Approve),
		RejectedBy:   verdictsBy(d, Reject),
		Verdicts:     d.GetVerdicts(),
		Conditions:   d.GetConditions(),
	}
}

func verdictsBy(d *councilv1.Decision, t councilv1.VerdictType) []string {
	by := []string{}
	for _, v := range d.GetVerdicts() {
		if v.GetVerdict() == t {
			by = append(by, v.GetBy())
		}
	}
	return by
}

// timeText writes times as the other clients do: UTC, milliseconds, Z.
const timeText = "2006-01-02T15:04:05.000Z07:00"

func reasonOf(d *councilv1.Decision, st councilv1.DecisionStatus, waited time.Duration) string {
	var approvals, rejections []*councilv1.Verdict
	for _, v := range d.GetVerdicts() {
		switch v.GetVerdict() {
		case Approve:
			approvals = append(approvals, v)
		case Reject:
			rejections = append(rejections, v)
		}
	}
	tally := fmt.Sprintf("%d of %d approvals", len(approvals), d.GetApprovalsRequired())
	expiresAt := ""
	if d.GetExpiresAt() != nil {
		expiresAt = d.GetExpiresAt().AsTime().UTC().Format(timeText)
	}
	switch st {
	case councilv1.DecisionStatus_DECISION_STATUS_APPROVED:
		if len(approvals) == 0 {
			return "auto-approved by the council: " + d.GetFinalReasoning()
		}
		people := make([]string, len(approvals))
		for i, v := range approvals {
			people[i] = v.GetBy()
			if v.GetComment() != "" {
				people[i] += " (" + strconv.Quote(v.GetComment()) + ")"
			}
		}
		return fmt.Sprintf("approved by %s (%s)", strings.Join(people, ", "), tally)
	case councilv1.DecisionStatus_DECISION_STATUS_REJECTED:
		if len(rejections) == 0 {
			return "rejected by the council: " + d.GetFinalReasoning()
		}
		people := make([]string, len(rejections))
		for i, v := range rejections {
			people[i] = v.GetBy() + ": " + strconv.Quote(v.GetComment())
		}
		return "rejected by " + strings.Join(people, "; ")
	case councilv1.DecisionStatus_DECISION_STATUS_EXPIRED:
		if expiresAt == "" {
			expiresAt = "its deadline"
		}
		return fmt.Sprintf("expired at %s with %s", expiresAt, tally)
	case councilv1.DecisionStatus_DECISION_STATUS_SUPERSEDED:
		by := d.GetSupersededBy()
		if by == "" {
			by = "a later review"
		}
		return "superseded by " + by
	}
	if expiresAt != "" {
		tally += ", expires at " + expiresAt
	}
	return fmt.Sprintf("timed out after %d ms: decision %s (%s) is still pending (%s)", waited.Milliseconds(), d.GetId(), d.GetDecision(), tally)
}
