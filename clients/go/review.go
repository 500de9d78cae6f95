package council

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// ReviewOption configures one Review.
type ReviewOption func(*reviewOptions)

type reviewOptions struct {
	onVote     func(*councilv1.Vote)
	requestID  string
	dryRun     bool
	supersedes string
}

// OnVote calls fn with each vote as soon as it arrives, in reviewer order, before Review returns
// the decision. fn runs on the caller's goroutine and is called once per reviewer, even when the
// review is retried (votes that a retry replays are not passed again).
func OnVote(fn func(*councilv1.Vote)) ReviewOption {
	return func(o *reviewOptions) { o.onVote = fn }
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

// Review submits a suggestion to the council and returns the decision once it is stored.
//
// Unless WithRequestID is given, Review makes a random request id, and it keeps that id when it
// retries after UNAVAILABLE, so a review that reached the store before the connection failed is
// replayed, not made twice. Only UNAVAILABLE is retried (see WithRetry); a context without a
// deadline gets the WithTimeout default for the whole review, retries included. Errors are
// *Error values: ErrInvalidArgument names the bad field (Error.Field), ErrFailedPrecondition means
// the request id was used for a different suggestion, ErrUnauthenticated and ErrPermissionDenied
// mean the caller's credentials or role, and ErrResourceExhausted the caller's review rate (not
// retried).
func (c *Client) Review(ctx context.Context, s *councilv1.Suggestion, opts ...ReviewOption) (*councilv1.Decision, error) {
	var o reviewOptions
	for _, opt := range opts {
		opt(&o)
	}
	return c.review(ctx, s, o)
}

func (c *Client) review(ctx context.Context, s *councilv1.Suggestion, o reviewOptions) (*councilv1.Decision, error) {
	req := &councilv1.ReviewSuggestionRequest{Suggestion: s, RequestId: o.requestID, DryRun: o.dryRun, Supersedes: o.supersedes}
	if o.dryRun {
		req.RequestId = ""
	} else if req.RequestId == "" {
		req.RequestId = NewRequestID()
	}

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	delivered := 0 // votes already passed to OnVote, by earlier attempts included
	var decision *councilv1.Decision
	err := c.retry(ctx, func(ctx context.Context) error {
		d, err := c.reviewOnce(ctx, req, &delivered, o.onVote)
		decision = d
		return err
	})
	if err != nil {
		return nil, FromRPCError(err)
	}
	return decision, nil
}

// reviewOnce makes one ReviewSuggestion call. A replayed review streams the same votes in the same
// order, so the first *delivered votes of a retry were passed to onVote already and are skipped.
func (c *Client) reviewOnce(ctx context.Context, req *councilv1.ReviewSuggestionRequest, delivered *int, onVote func(*councilv1.Vote)) (*councilv1.Decision, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.ReviewSuggestion(ctx, req)
	if err != nil {
		return nil, err
	}
	votes := 0
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Internal, "council: the review stream ended without a decision")
		}
		if err != nil {
			return nil, err
		}
		switch e := ev.GetEvent().(type) {
		case *councilv1.ReviewSuggestionResponse_Vote:
			votes++
			if votes > *delivered {
				*delivered = votes
				if onVote != nil {
					onVote(e.Vote)
				}
			}
		case *councilv1.ReviewSuggestionResponse_Decision:
			// The decision is stored before it is sent; the stream now ends OK. Read that end so
			// that the call finishes cleanly rather than being cancelled, but the decision stands
			// whatever the trailer says.
			_, _ = stream.Recv()
			return e.Decision, nil
		}
	}
}
