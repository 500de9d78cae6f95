package council

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// Defaults of ReviewerOptions.
const (
	// DefaultReviewerConcurrency is how many tasks ServeReviews hands to the handler at once.
	DefaultReviewerConcurrency = 16
	// DefaultReconnectBackoff bounds the wait before ServeReviews reconnects the first time after
	// a stream ended; it doubles after each stream that ends without having been accepted, up to
	// DefaultMaxReconnectBackoff, and each wait is random up to the bound (full jitter).
	DefaultReconnectBackoff = 100 * time.Millisecond
	// DefaultMaxReconnectBackoff caps the wait between two reconnections.
	DefaultMaxReconnectBackoff = 10 * time.Second
)

// ReviewHandler answers one review task: the suggestion under review (with its diff, if the agent
// sent one), the role to vote as, the decision it is for, whether it is a dry run, and the
// deadline. ctx carries that deadline (and ends early if ServeReviews stops or the stream
// breaks, when the vote could no longer be delivered).
//
// It returns the vote: Vote (the vote type), Reasoning, Concerns, Conditions, Confidence in
// [0, 1], and Veto (only on a REJECT: snake_case, e.g. "credential_in_diff"); TaskId is filled
// in by ServeReviews and may be left empty. The returned message is only read, so a handler may
// return the same one for many tasks. Returning an error, or a nil vote, sends no vote: the
// server then applies the role's failure policy once the task times out.
type ReviewHandler func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error)

// ReviewerOptions configures ServeReviews. Roles and Handler are required.
type ReviewerOptions struct {
	// Roles are the roles served: each must be external in the server's policy.
	Roles []councilv1.ReviewerRole
	// Handler votes on each task.
	Handler ReviewHandler
	// Concurrency is how many tasks are handled at once (0: DefaultReviewerConcurrency, 16).
	// When every slot is busy, the next task waits for one: it is not read from the stream
	// before.
	Concurrency int
	// OnConnected, if set, is called each time the server accepts the stream (its response
	// headers arrived): at first, and after each reconnection. Tasks are not read while it runs.
	OnConnected func()
	// Logger receives what ServeReviews cannot return: handler errors and panics, votes dropped
	// because they came after the task's deadline, and reconnections. Nil means slog.Default();
	// slog.New(slog.DiscardHandler) silences it.
	Logger *slog.Logger
	// Backoff bounds the wait before reconnecting after a stream ended (0:
	// DefaultReconnectBackoff); it doubles after each stream that the server did not accept, up
	// to MaxBackoff (0: DefaultMaxReconnectBackoff), and is reset once one is accepted. Each wait
	// is random between zero and its bound (full jitter).
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// ServeReviews serves external reviewer roles (the principal needs the role reviewer): it opens
// the ServeReviews stream, says which roles it serves, calls the handler for each task the server
// sends (up to Concurrency at once, each under the task's deadline) and sends back each vote the
// handler returns in time. It blocks until:
//
//   - ctx is cancelled: it returns nil (ctx's deadline passing returns a DEADLINE_EXCEEDED error);
//   - the server refuses the stream for a reason retrying cannot fix: it returns that *Error,
//     UNAUTHENTICATED (a missing or wrong token), PERMISSION_DENIED (the principal lacks the role
//     reviewer), FAILED_PRECONDITION (a role that is not external in the server's policy) or
//     INVALID_ARGUMENT (no valid role), UNIMPLEMENTED (a server without ServeReviews);
//   - the Client is closed: it returns the CANCELED error.
//
// Any other end of the stream (the server shutting down with UNAVAILABLE, the connection lost, the
// server ending it) is followed by a reconnection after a backoff with full jitter (see
// ReviewerOptions.Backoff), logged on the Logger. Before it returns, ServeReviews cancels the
// context of every handler still running and waits for them to return.
//
//	err := client.ServeReviews(ctx, council.ReviewerOptions{
//		Roles: []councilv1.ReviewerRole{councilv1.ReviewerRole_REVIEWER_ROLE_SAFETY},
//		Handler: func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
//			return &councilv1.TaskVote{Vote: councilv1.VoteType_VOTE_TYPE_APPROVE, Confidence: 0.9, Reasoning: "ok"}, nil
//		},
//		OnConnected: func() { log.Print("serving") },
//	})
//
// A handler error (or panic) is logged and sends no vote: the server applies the role's failure
// policy (`on_failure`) when the task times out. A vote the handler returns after the task's
// deadline is dropped (and logged), since the server would ignore it. The deadline is the
// server's clock: keep the reviewer's clock in sync.
func (c *Client) ServeReviews(ctx context.Context, o ReviewerOptions) error {
	if len(o.Roles) == 0 {
		return errors.New("council: ServeReviews needs at least one role")
	}
	if o.Handler == nil {
		return errors.New("council: ServeReviews needs a handler")
	}
	if o.Concurrency < 0 || o.Backoff < 0 || o.MaxBackoff < 0 {
		return fmt.Errorf("council: ServeReviews needs Concurrency, Backoff and MaxBackoff >= 0, got %d, %v and %v", o.Concurrency, o.Backoff, o.MaxBackoff)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultReviewerConcurrency
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultReconnectBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxReconnectBackoff, o.Backoff)
	}
	if o.MaxBackoff < o.Backoff {
		return fmt.Errorf("council: ServeReviews needs Backoff <= MaxBackoff, got %v and %v", o.Backoff, o.MaxBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &reviewer{client: c, opts: o, slots: make(chan struct{}, o.Concurrency)}
	defer r.handlers.Wait()

	for attempt := 1; ; attempt++ {
		accepted, err := r.serve(ctx)
		if ctx.Err() != nil {
			return ctxEnd(ctx)
		}
		if giveUp(err) || c.conn.GetState() == connectivity.Shutdown {
			return FromRPCError(err)
		}
		if accepted {
			attempt = 1 // the server took the stream: the next failure starts the backoff over
		}
		wait := fullJitter(o.Backoff, o.MaxBackoff, attempt)
		o.Logger.Warn("council: reviewer stream ended; reconnecting", "error", err, "after", wait)
		if !sleep(ctx, wait) {
			return ctxEnd(ctx)
		}
	}
}

// giveUp is true for the ends of a reviewer stream that mean the configuration is wrong, which
// reconnecting would meet again.
func giveUp(err error) bool {
	switch Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument, codes.Unimplemented:
		return true
	}
	return false
}

// ctxEnd is what ServeReviews returns once ctx has ended: nil if it was cancelled, a
// DEADLINE_EXCEEDED *Error if its deadline passed.
func ctxEnd(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return FromRPCError(status.FromContextError(ctx.Err()).Err())
	}
	return nil
}

// errEndedByServer is a stream the server ended with OK: reconnect, as after UNAVAILABLE.
var errEndedByServer = errors.New("the server ended the reviewer stream")

type reviewer struct {
	client   *Client
	opts     ReviewerOptions
	slots    chan struct{}  // one element per handler running, across streams
	handlers sync.WaitGroup // the handlers running, across streams
}

// serve runs one stream until it ends, and returns why, and whether the server accepted it. The
// handlers of its tasks are cancelled when it returns: their votes could no longer be delivered.
func (r *reviewer) serve(parent context.Context) (accepted bool, err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stream, err := r.client.rpc.ServeReviews(ctx)
	if err != nil {
		return false, err
	}
	hello := &councilv1.ServeReviewsRequest{Message: &councilv1.ServeReviewsRequest_Hello{Hello: &councilv1.ReviewerHello{Roles: r.opts.Roles}}}
	// io.EOF means the stream has already ended: Recv below returns its status.
	if err := stream.Send(hello); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	// The server sends its headers once it has taken the hello. Header returns nil metadata when
	// the stream ended without any (refused at once, e.g. FAILED_PRECONDITION): Recv has why.
	if md, _ := stream.Header(); md != nil {
		accepted = true
		r.opts.Logger.Debug("council: serving reviews", "roles", r.opts.Roles)
		if r.opts.OnConnected != nil {
			r.opts.OnConnected()
		}
	}

	var sending sync.Mutex // a gRPC stream takes one Send at a time
	send := func(vote *councilv1.TaskVote) error {
		sending.Lock()
		defer sending.Unlock()
		err := stream.Send(&councilv1.ServeReviewsRequest{Message: &councilv1.ServeReviewsRequest_Vote{Vote: vote}})
		if err != nil {
			// The stream is broken: stop waiting for a free slot, and reconnect.
			cancel(fmt.Errorf("sending a vote: %w", err))
		}
		return err
	}
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return accepted, errEndedByServer
		}
		if err != nil {
			if ctx.Err() != nil && parent.Err() == nil {
				err = context.Cause(ctx) // a failed send broke the stream: say so, not "canceled"
			}
			return accepted, err
		}
		task := res.GetTask()
		if task == nil {
			continue
		}
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return accepted, context.Cause(ctx)
		}
		r.handlers.Add(1)
		go func() {
			defer r.handlers.Done()
			defer func() { <-r.slots }()
			r.handle(ctx, task, send)
		}()
	}
}

// handle runs the handler on one task under the task's deadline and sends its vote if it came in
// time and the stream is still up.
func (r *reviewer) handle(ctx context.Context, task *councilv1.ReviewTask, send func(*councilv1.TaskVote) error) {
	log := r.opts.Logger.With("task_id", task.GetTaskId(), "decision_id", task.GetDecisionId(), "role", task.GetRole())
	taskCtx, cancel := ctx, context.CancelFunc(func() {})
	var deadline time.Time
	if d := task.GetDeadline(); d != nil {
		deadline = d.AsTime()
		taskCtx, cancel = context.WithDeadline(ctx, deadline)
	}
	defer cancel()
	late := func() bool { return !deadline.IsZero() && !time.Now().Before(deadline) }
	if ctx.Err() != nil {
		return // the stream ended while the task waited for a slot
	}
	if late() {
		log.Warn("council: review task not handled: its deadline passed before a handler could start (no free slot in time, or the clocks differ)", "deadline", deadline)
		return
	}

	vote, err := r.call(taskCtx, task)
	// Once the task's context has ended at its deadline the vote is late, even if its timer fired
	// a moment before the wall clock reached the deadline.
	tooLate := late() || (taskCtx.Err() != nil && ctx.Err() == nil)
	switch {
	case ctx.Err() != nil:
		// ServeReviews is stopping, or the stream broke: no vote can be sent, and an error is
		// most likely the handler seeing its context cancelled.
		log.Debug("council: no vote sent: the reviewer stream ended", "error", err, "cause", context.Cause(ctx))
	case tooLate && vote != nil && err == nil:
		log.Warn("council: vote dropped: the handler returned it after the task's deadline", "deadline", deadline, "late_by", time.Since(deadline))
	case tooLate:
		log.Warn("council: no vote sent: the handler did not finish before the task's deadline", "deadline", deadline, "error", err)
	case err != nil:
		log.Error("council: review handler failed; no vote sent (the role's failure policy will vote)", "error", err)
	case vote == nil:
		log.Debug("council: review handler returned no vote")
	default:
		err := send(&councilv1.TaskVote{
			TaskId:     task.GetTaskId(),
			Vote:       vote.GetVote(),
			Reasoning:  vote.GetReasoning(),
			Concerns:   vote.GetConcerns(),
			Conditions: vote.GetConditions(),
			Confidence: vote.GetConfidence(),
			Veto:       vote.GetVeto(),
		})
		if err != nil {
			log.Debug("council: vote not sent: the reviewer stream ended", "error", err)
		}
	}
}

// call runs the handler, turning a panic into an error so that one bad task does not take the
// reviewer down with every other task in flight.
func (r *reviewer) call(ctx context.Context, task *councilv1.ReviewTask) (vote *councilv1.TaskVote, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the handler panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return r.opts.Handler(ctx, task)
}
