package council

import (
	"context"
	"errors"
	"io"

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

// AwaitDecision waits for people to decide a decision: it streams its states, the current one at
// once, then one per change (a verdict, the status), and stops after a final status (APPROVED,
// REJECTED, EXPIRED or SUPERSEDED).
//
//	a := client.AwaitDecision(ctx, id)
//	defer a.Close()
//	for d, err := range a.All() {
//		if err != nil {
//			return err
//		}
//		fmt.Println(d.GetStatus(), len(d.GetVerdicts()))
//	}
//
// The wait opens at once; Ready is closed once the server's response headers arrive (with the
// current state). ctx bounds it; the WithTimeout default does not apply (the decision's expiry
// ends it). When ctx's deadline passes the loop gets a DEADLINE_EXCEEDED error; when the caller
// cancels ctx, calls Close, or breaks out of the loop, it ends without one. UNAVAILABLE (a replica
// shutting down, a lost connection) is retried as WithRetry says by awaiting again, which resumes:
// the server sends the current state first, and a state already yielded is not yielded twice.
// Other errors (NOT_FOUND for an unknown decision, …) are yielded with a nil decision, and end the
// iteration.
func (c *Client) AwaitDecision(ctx context.Context, decisionID string) *Stream[*councilv1.Decision] {
	return openStream(ctx, func(ctx context.Context, live func(), emit func(*councilv1.Decision) bool) error {
		return c.awaitStates(ctx, decisionID, nil, live, emit)
	})
}

// awaitStates passes each new state of the decision to emit until a final one, skipping states
// that say nothing new since `since` (if given), and awaiting again after UNAVAILABLE. It returns
// nil once a final state was emitted, ctx's error if emit refused a state, or the call's error.
func (c *Client) awaitStates(ctx context.Context, decisionID string, since *councilv1.Decision, live func(), emit func(*councilv1.Decision) bool) error {
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
			if md, _ := stream.Header(); md != nil {
				live()
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
					if !emit(d) {
						return errStop
					}
				}
				if isFinal(d) {
					return nil
				}
			}
		}()
		if err == nil {
			return nil
		}
		if errors.Is(err, errStop) {
			return ctx.Err()
		}
		if ctx.Err() != nil {
			return err // the call's CANCELED or DEADLINE_EXCEEDED
		}
		failures++
		if Code(err) != codes.Unavailable || failures >= c.cfg.maxAttempts || !c.sleepBackoff(ctx, failures) {
			return err
		}
	}
}

// errStop ends an attempt whose states nobody takes any more (the loop broke, the caller left).
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
