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

// ReviewEvent is one event of a review, in the order the council makes them: each reviewer's
// vote (Vote set), then the decision (Decision set), always the last event. Every event carries
// the decision's id, so the votes can be tied to the decision before it is made.
type ReviewEvent struct {
	// DecisionID is the id of the decision the review makes (what GetDecision, AwaitDecision and
	// approvers need). A review with a request id keeps it across retries; a dry run's id is not
	// stored (and a dry run retried after UNAVAILABLE may get another one).
	DecisionID string
	// SuggestionID is the id of the suggestion under review.
	SuggestionID string
	// Vote is a reviewer's vote, or nil for the decision event.
	Vote *councilv1.Vote
	// Decision is the decision, set on the last event only (stored before it is sent, unless the
	// review is a dry run).
	Decision *councilv1.Decision
}

// ReviewOption configures one Review (or Decide, or Guard).
type ReviewOption func(*reviewOptions)

type reviewOptions struct {
	onVote     func(*councilv1.Vote) // Guard's OnVote
	requestID  string
	dryRun     bool
	supersedes string
}

// WithRequestID sets the idempotency key of the review instead of a random one: a review sent
// again with the same key and an equal suggestion returns the stored decision rather than making
// a new one, and the same key with a different suggestion fails FAILED_PRECONDITION.
func WithRequestID(id string) ReviewOption {
	return func(o *reviewOptions) { o.requestID = id }
}

// WithSupersedes names a pending decision of the same submitter that this review follows up (for
// example a DEFER answered with more information): once this review is stored, that decision
// becomes SUPERSEDED. Anything else named here fails FAILED_PRECONDITION.
func WithSupersedes(decisionID string) ReviewOption {
	return func(o *reviewOptions) { o.supersedes = decisionID }
}

// DryRun streams the votes and the decision without storing anything (the decision still gets an
// id, which GetDecision will not find). A dry run sends no request id.
func DryRun() ReviewOption {
	return func(o *reviewOptions) { o.dryRun = true }
}

// Review submits a suggestion to the council and streams the review: each reviewer's vote as it
// is cast, in reviewer order, then the decision, once it is stored. Every event carries the
// decision id.
//
//	var decision *councilv1.Decision
//	for ev, err := range client.Review(ctx, suggestion) {
//		if err != nil {
//			return err // an *Error
//		}
//		if ev.Vote != nil {
//			fmt.Println(ev.DecisionID, ev.Vote.GetReviewerRole(), ev.Vote.GetVote())
//		} else {
//			decision = ev.Decision // the last event
//		}
//	}
//
// The call starts when the loop does. Breaking out of the loop cancels it (the server sees the
// call cancelled; a review that reached the store stays stored). If the loop ends without a
// decision, it ended with an error: the last event yielded an error and a zero ReviewEvent.
// Decide runs the same review and returns only the decision.
//
// Unless WithRequestID is given, Review makes a random request id (once, when it is called: each
// range over the same iterator sends the same one), and it keeps that id when it retries after
// UNAVAILABLE, so a review that reached the store before the connection failed is replayed, not
// made twice; a vote the replay repeats is not yielded again. Only UNAVAILABLE is retried (see
// WithRetry); a context without a deadline gets the WithReviewTimeout default (60 s) for the
// whole review, retries included. Cancelling ctx yields a CANCELED error, its deadline a
// DEADLINE_EXCEEDED one. Other errors are *Error values too: ErrInvalidArgument names the bad
// field (Error.Field), ErrFailedPrecondition means the request id was used for a different
// suggestion, ErrUnauthenticated and ErrPermissionDenied mean the caller's credentials or role,
// and ErrResourceExhausted the caller's review rate (not retried).
func (c *Client) Review(ctx context.Context, s *councilv1.Suggestion, opts ...ReviewOption) iter.Seq2[ReviewEvent, error] {
	var o reviewOptions
	for _, opt := range opts {
		opt(&o)
	}
	return c.review(ctx, s, o)
}

// Decide submits a suggestion to the council and returns the decision once it is stored: Review,
// without the votes (they are in the decision). It takes the same options, retries and default
// deadline, and returns the same errors.
func (c *Client) Decide(ctx context.Context, s *councilv1.Suggestion, opts ...ReviewOption) (*councilv1.Decision, error) {
	return decisionOf(c.Review(ctx, s, opts...))
}

// decisionOf runs a review to its end and returns its decision, or its error.
func decisionOf(review iter.Seq2[ReviewEvent, error]) (*councilv1.Decision, error) {
	for ev, err := range review {
		if err != nil {
			return nil, err
		}
		if ev.Decision != nil {
			return ev.Decision, nil
		}
	}
	// A review yields a decision or an error; reaching this would be a bug in it.
	return nil, FromRPCError(status.Error(codes.Internal, "council: the review ended without a decision"))
}

func (c *Client) review(caller context.Context, s *councilv1.Suggestion, o reviewOptions) iter.Seq2[ReviewEvent, error] {
	req := &councilv1.ReviewSuggestionRequest{Suggestion: s, RequestId: o.requestID, DryRun: o.dryRun, Supersedes: o.supersedes}
	if o.dryRun {
		req.RequestId = ""
	} else if req.RequestId == "" {
		req.RequestId = NewRequestID()
	}
	return func(yield func(ReviewEvent, error) bool) {
		ctx, cancel := c.withReviewTimeout(caller)
		defer cancel()
		delivered := 0 // votes already yielded, by earlier attempts included
		err := c.retry(ctx, func(ctx context.Context) error {
			return c.reviewOnce(ctx, req, &delivered, func(ev ReviewEvent) bool {
				if o.onVote != nil && ev.Vote != nil {
					o.onVote(ev.Vote)
				}
				return yield(ev, nil)
			})
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(ReviewEvent{}, FromRPCError(err))
		}
	}
}

// reviewOnce makes one ReviewSuggestion call and passes its events to emit. A replayed review
// streams the same votes in the same order, so the first *delivered votes of a retry were passed
// already and are skipped. It returns errStop if emit asked to stop.
func (c *Client) reviewOnce(ctx context.Context, req *councilv1.ReviewSuggestionRequest, delivered *int, emit func(ReviewEvent) bool) error {
	// Cancelled on return: when the loop breaks, the server sees the call cancelled at once.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.ReviewSuggestion(ctx, req)
	if err != nil {
		return err
	}
	votes := 0
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return status.Error(codes.Internal, "council: the review stream ended without a decision")
		}
		if err != nil {
			return err
		}
		event := ReviewEvent{DecisionID: ev.GetDecisionId(), SuggestionID: ev.GetSuggestionId()}
		switch e := ev.GetEvent().(type) {
		case *councilv1.ReviewSuggestionResponse_Vote:
			votes++
			if votes <= *delivered {
				continue
			}
			*delivered = votes
			event.Vote = e.Vote
		case *councilv1.ReviewSuggestionResponse_Decision:
			// The decision is stored before it is sent; the stream now ends OK. Read that end so
			// that the call finishes cleanly rather than being cancelled, but the decision stands
			// whatever the trailer says.
			_, _ = stream.Recv()
			event.Decision = e.Decision
			if event.DecisionID == "" {
				event.DecisionID = e.Decision.GetId()
			}
			if !emit(event) {
				return errStop
			}
			return nil
		default:
			continue
		}
		if !emit(event) {
			return errStop
		}
	}
}
