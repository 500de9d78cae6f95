package council

import (
	"context"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// The verdicts a person gives with Resolve.
const (
	// Approve counts towards the approvals a pending decision requires.
	Approve = councilv1.VerdictType_VERDICT_TYPE_APPROVE
	// Reject rejects a pending decision at once; it needs a comment.
	Reject = councilv1.VerdictType_VERDICT_TYPE_REJECT
)

// ResolveOption configures one Resolve.
type ResolveOption func(*councilv1.ResolveDecisionRequest)

// WithVerdictRequestID sets the idempotency key of Resolve instead of a random one, for a retry
// that may come from another process: the same key returns the same answer, and the same key
// with another verdict or comment fails FAILED_PRECONDITION.
func WithVerdictRequestID(id string) ResolveOption {
	return func(r *councilv1.ResolveDecisionRequest) { r.RequestId = id }
}

// Resolve gives the caller's verdict (Approve, or Reject with a comment) on a pending decision and
// returns the decision with it counted. One rejection rejects; approvals from approvals_required
// distinct principals approve. The caller needs the role approver and may not judge a decision
// it submitted (PERMISSION_DENIED).
//
// Errors: INVALID_ARGUMENT for a Reject without a comment (Error.Field is "comment") or an
// unspecified verdict; NOT_FOUND for an unknown decision; FAILED_PRECONDITION for a decision
// that is not pending (the message names its status) or for the other verdict than the one the
// caller already gave (the same verdict again returns the decision unchanged).
//
// Unless WithVerdictRequestID is given, Resolve makes a random request id and keeps it when it
// retries after UNAVAILABLE, so a verdict counted before the reply was lost is not counted twice.
func (c *Client) Resolve(ctx context.Context, decisionID string, verdict councilv1.VerdictType, comment string, opts ...ResolveOption) (*councilv1.Decision, error) {
	req := &councilv1.ResolveDecisionRequest{DecisionId: decisionID, Verdict: verdict, Comment: comment}
	for _, opt := range opts {
		opt(req)
	}
	if req.RequestId == "" {
		req.RequestId = NewRequestID()
	}
	res, err := unary(ctx, c, func(ctx context.Context) (*councilv1.ResolveDecisionResponse, error) {
		return c.rpc.ResolveDecision(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	return res.GetDecision(), nil
}

// AwaitDecision streams the states of a decision as people decide it: the current one at once,
// then one per change (a verdict, the status), and stops after a final status (APPROVED,
// REJECTED, EXPIRED or SUPERSEDED).
//
//	for d, err := range client.AwaitDecision(ctx, id) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(d.GetStatus(), len(d.GetVerdicts()))
//	}
//
// ctx bounds the wait; the WithTimeout default does not apply (the decision's expiry ends it).
// When ctx's deadline passes the iterator yields a DEADLINE_EXCEEDED error; when ctx is
// cancelled, or the loop body breaks, it stops without one. UNAVAILABLE (a replica shutting
// down) is retried as WithRetry says by awaiting again, which resumes; a state already yielded is
// not yielded twice. Other errors (NOT_FOUND for an unknown decision, …) are yielded with a nil
// decision, and end the iteration.
func (c *Client) AwaitDecision(ctx context.Context, decisionID string) iter.Seq2[*councilv1.Decision, error] {
	return c.awaitStates(ctx, decisionID, nil)
}

// awaitStates is AwaitDecision, skipping states that say nothing new since `since` (if given).
func (c *Client) awaitStates(caller context.Context, decisionID string, since *councilv1.Decision) iter.Seq2[*councilv1.Decision, error] {
	return func(yield func(*councilv1.Decision, error) bool) {
		ctx, cancel := context.WithCancel(caller)
		defer cancel()
		last := since
		failures := 0
		for {
			err := func() error {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				stream, err := c.rpc.AwaitDecision(ctx, &councilv1.AwaitDecisionRequest{DecisionId: decisionID})
				if err != nil {
					return err
				}
				for {
					res, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						return status.Error(codes.Internal, "council: the await stream ended before the decision reached a final status")
					}
					if err != nil {
						return err
					}
					failures = 0
					d := res.GetDecision()
					if last == nil || changed(last, d) {
						last = d
						if !yield(d, nil) {
							return errStop
						}
					}
					if isFinal(d) {
						return errStop
					}
				}
			}()
			if errors.Is(err, errStop) || errors.Is(caller.Err(), context.Canceled) {
				return
			}
			failures++
			if Code(err) != codes.Unavailable || failures >= c.cfg.maxAttempts || !sleep(ctx, c.backoff(failures)) {
				if errors.Is(caller.Err(), context.Canceled) {
					return
				}
				yield(nil, FromRPCError(err))
				return
			}
		}
	}
}

// errStop ends an await that is done: final, or its loop body broke.
var errStop = errors.New("stop")

// statusOf is the decision's status. A server older than human verdicts sends none: then
// AUTO_APPROVE reads approved, REJECT rejected, and the rest pending, as the server reads them.
func statusOf(d *councilv1.Decision) councilv1.DecisionStatus {
	if s := d.GetStatus(); s != councilv1.DecisionStatus_DECISION_STATUS_UNSPECIFIED {
		return s
	}
	switch d.GetDecision() {
	case councilv1.DecisionType_DECISION_TYPE_AUTO_APPROVE:
		return councilv1.DecisionStatus_DECISION_STATUS_APPROVED
	case councilv1.DecisionType_DECISION_TYPE_REJECT:
		return councilv1.DecisionStatus_DECISION_STATUS_REJECTED
	}
	return councilv1.DecisionStatus_DECISION_STATUS_PENDING
}

// isFinal reports a decision that left PENDING.
func isFinal(d *councilv1.Decision) bool {
	return statusOf(d) != councilv1.DecisionStatus_DECISION_STATUS_PENDING
}

// changed reports whether b says anything a did not: another status, verdict, outcome or successor.
func changed(a, b *councilv1.Decision) bool {
	return statusOf(a) != statusOf(b) ||
		len(a.GetVerdicts()) != len(b.GetVerdicts()) ||
		a.GetOutcome() != b.GetOutcome() ||
		a.GetSupersededBy() != b.GetSupersededBy()
}
