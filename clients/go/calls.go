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

// unary makes a call that is safe to repeat (a read, or a write that carries a request id), with
// the default deadline and the retry policy.
func unary[Res any](ctx context.Context, c *Client, call func(context.Context) (Res, error)) (Res, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var res Res
	err := c.retry(ctx, func(ctx context.Context) error {
		r, err := call(ctx)
		res = r
		return err
	})
	return res, FromRPCError(err)
}

// GetDecision returns the stored decision with the given id; NOT_FOUND if there is none.
func (c *Client) GetDecision(ctx context.Context, id string) (*councilv1.Decision, error) {
	res, err := unary(ctx, c, func(ctx context.Context) (*councilv1.GetDecisionResponse, error) {
		return c.rpc.GetDecision(ctx, &councilv1.GetDecisionRequest{Id: id})
	})
	if err != nil {
		return nil, err
	}
	return res.GetDecision(), nil
}

// DecisionFilter selects the decisions ListDecisions returns; the zero value selects all.
type DecisionFilter struct {
	// Type keeps decisions of this type; DECISION_TYPE_UNSPECIFIED keeps all.
	Type councilv1.DecisionType
	// SuggestionID keeps decisions about this suggestion; empty keeps all.
	SuggestionID string
	// Status keeps decisions in this status now; DECISION_STATUS_UNSPECIFIED keeps all.
	Status councilv1.DecisionStatus
	// OldestFirst walks oldest first instead of newest first. The approvers' queue is
	// DecisionFilter{Status: councilv1.DecisionStatus_DECISION_STATUS_PENDING, OldestFirst: true}.
	OldestFirst bool
	// PageSize is how many decisions each call fetches: 0 means the server's default (50), and
	// the server caps it at 500.
	PageSize int32
}

// ListDecisions walks every page of the stored decisions that match f, newest first (oldest first
// with f.OldestFirst). Each page is
// one call with the default deadline and the retry policy; the walk stops at the first error,
// which is yielded with a nil decision, or when the loop body breaks.
//
//	for d, err := range client.ListDecisions(ctx, council.DecisionFilter{SuggestionID: "s-1"}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(d.GetId())
//	}
func (c *Client) ListDecisions(ctx context.Context, f DecisionFilter) iter.Seq2[*councilv1.Decision, error] {
	return pages(func(token string) ([]*councilv1.Decision, string, error) {
		res, err := unary(ctx, c, func(ctx context.Context) (*councilv1.ListDecisionsResponse, error) {
			return c.rpc.ListDecisions(ctx, &councilv1.ListDecisionsRequest{
				DecisionType: f.Type,
				SuggestionId: f.SuggestionID,
				Status:       f.Status,
				OldestFirst:  f.OldestFirst,
				PageSize:     f.PageSize,
				PageToken:    token,
			})
		})
		return res.GetDecisions(), res.GetNextPageToken(), err
	})
}

// Lessons walks every page of the recorded lessons, newest first, fetching pageSize per call (0:
// the server's default), as ListDecisions does.
func (c *Client) Lessons(ctx context.Context, pageSize int32) iter.Seq2[*councilv1.Lesson, error] {
	return pages(func(token string) ([]*councilv1.Lesson, string, error) {
		res, err := unary(ctx, c, func(ctx context.Context) (*councilv1.ListLessonsResponse, error) {
			return c.rpc.ListLessons(ctx, &councilv1.ListLessonsRequest{PageSize: pageSize, PageToken: token})
		})
		return res.GetLessons(), res.GetNextPageToken(), err
	})
}

// pages turns a page fetcher into an iterator over every item of every page.
func pages[T any](fetch func(token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		token := ""
		for {
			items, next, err := fetch(token)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, item := range items {
				if !yield(item, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if next == token {
				yield(zero, FromRPCError(status.Error(codes.Internal, "council: the server returned the same page token twice")))
				return
			}
			token = next
		}
	}
}

// OutcomeOption configures one RecordOutcome.
type OutcomeOption func(*outcomeOptions)

type outcomeOptions struct {
	requestID string
}

// WithOutcomeRequestID sets the idempotency key of RecordOutcome instead of a random one: the
// server records an outcome once per (decision, request id), so a call sent again with the same
// key and the same outcome, notes and lessons returns the decision as stored without appending
// another lesson entry, and the same key with a different outcome, notes or lessons fails
// FAILED_PRECONDITION. Use it, with a key from NewRequestID that you keep, when a retry may come
// from another process, for example after a restart.
func WithOutcomeRequestID(id string) OutcomeOption {
	return func(o *outcomeOptions) { o.requestID = id }
}

// RecordOutcome records what happened when the decision was implemented, appends a lesson entry,
// and returns the updated decision. NOT_FOUND for an unknown decision, INVALID_ARGUMENT for
// OUTCOME_UNSPECIFIED, FAILED_PRECONDITION for a decision that is not APPROVED, or for a request
// id (WithOutcomeRequestID) already used with a different outcome, notes or lessons of this
// decision.
//
// Unless WithOutcomeRequestID is given, RecordOutcome makes a random request id, and it keeps that
// id when it retries after UNAVAILABLE (see WithRetry), so an outcome that was recorded before the
// reply was lost is not recorded, nor its lesson appended, twice.
func (c *Client) RecordOutcome(ctx context.Context, decisionID string, outcome councilv1.Outcome, notes, lessons string, opts ...OutcomeOption) (*councilv1.Decision, error) {
	var o outcomeOptions
	for _, opt := range opts {
		opt(&o)
	}
	req := &councilv1.RecordOutcomeRequest{
		DecisionId: decisionID,
		Outcome:    outcome,
		Notes:      notes,
		Lessons:    lessons,
		RequestId:  o.requestID,
	}
	if req.RequestId == "" {
		req.RequestId = NewRequestID()
	}
	res, err := unary(ctx, c, func(ctx context.Context) (*councilv1.RecordOutcomeResponse, error) {
		return c.rpc.RecordOutcome(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	return res.GetDecision(), nil
}

// Summary returns exact counts over every stored decision and lesson.
func (c *Client) Summary(ctx context.Context) (*councilv1.GetSummaryResponse, error) {
	return unary(ctx, c, func(ctx context.Context) (*councilv1.GetSummaryResponse, error) {
		return c.rpc.GetSummary(ctx, &councilv1.GetSummaryRequest{})
	})
}

// Reviewers returns the reviewers of the policy in force, in voting order, and the policy version.
func (c *Client) Reviewers(ctx context.Context) (*councilv1.ListReviewersResponse, error) {
	return unary(ctx, c, func(ctx context.Context) (*councilv1.ListReviewersResponse, error) {
		return c.rpc.ListReviewers(ctx, &councilv1.ListReviewersRequest{})
	})
}

// WatchOption configures Watch.
type WatchOption func(*councilv1.WatchDecisionsRequest)

// WatchType keeps only reviews whose decision has type t.
func WatchType(t councilv1.DecisionType) WatchOption {
	return func(r *councilv1.WatchDecisionsRequest) { r.DecisionType = t }
}

// WatchVotes sends each review's votes before its decision.
func WatchVotes() WatchOption {
	return func(r *councilv1.WatchDecisionsRequest) { r.IncludeVotes = true }
}

// WatchUpdates also sends a stored decision again each time its status, verdicts or outcome
// change (a verdict, an expiry, a follow-up review, an outcome).
func WatchUpdates() WatchOption {
	return func(r *councilv1.WatchDecisionsRequest) { r.IncludeUpdates = true }
}

// Watch opens a watch of every review stored from now on, on any replica: its votes (with
// WatchVotes), then its decision; dry runs and idempotent replays are not sent. Each event carries
// decision_id and suggestion_id; GetVote or GetDecision tells which it is.
//
// The watch opens at once (Watch does not wait for it). It is live once the server has subscribed
// it: Ready is closed then (or WaitReady returns nil), and every review stored from then on is
// sent; a review stored before that may not be. Range over All for the events:
//
//	w := client.Watch(ctx, council.WatchVotes())
//	defer w.Close()
//	for ev, err := range w.All() {
//		if err != nil {
//			return err // the server ended it: watch again, then catch up with ListDecisions
//		}
//		fmt.Println(ev.GetDecisionId(), ev.GetVote() != nil)
//	}
//
// The watch lasts until the caller cancels ctx, calls Close, or breaks out of the loop (all of
// which end it without an error), until ctx's deadline (a DEADLINE_EXCEEDED error), or until the
// server ends it. The WithTimeout default does not apply and nothing is retried: a new watch is
// live only from its own headers on, and reviews stored between two watches are not replayed, so
// an error (yielded with a nil event) is the caller's to handle, typically by watching again and
// reading up with ListDecisions. A watch the server ends at shutdown fails UNAVAILABLE; one that
// falls too far behind fails RESOURCE_EXHAUSTED.
func (c *Client) Watch(ctx context.Context, opts ...WatchOption) *Stream[*councilv1.WatchDecisionsResponse] {
	req := &councilv1.WatchDecisionsRequest{}
	for _, opt := range opts {
		opt(req)
	}
	return openStream(ctx, func(ctx context.Context, live func(), emit func(*councilv1.WatchDecisionsResponse) bool) error {
		stream, err := c.rpc.WatchDecisions(ctx, req)
		if err != nil {
			return err
		}
		// The server sends its headers once the watch is subscribed. Header returns nil metadata
		// when the call ended without any (a status at once, e.g. PERMISSION_DENIED): Recv has it.
		if md, _ := stream.Header(); md != nil {
			live()
		}
		for {
			ev, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if !emit(ev) {
				return ctx.Err()
			}
		}
	})
}
