package council

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	mathrand "math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
)

// NewRequestID returns a random idempotency key (32 hex digits) for ReviewSuggestion,
// RecordOutcome or ResolveDecision. Review, RecordOutcome and Resolve make one themselves; make
// your own and pass it with WithRequestID, WithOutcomeRequestID or WithVerdictRequestID when a
// retry may come from another process, for example after a restart.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}

// retry runs call until it succeeds, fails with a code other than UNAVAILABLE, has been tried
// maxAttempts times, or the next wait would end past ctx's deadline (or ctx ends during it); it
// returns the last attempt's error. Every attempt runs under ctx, so one deadline bounds them all.
func (c *Client) retry(ctx context.Context, call func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || Code(err) != codes.Unavailable || attempt >= c.cfg.maxAttempts {
			return err
		}
		if !c.sleepBackoff(ctx, attempt) {
			return err
		}
	}
}

// sleepBackoff waits before the retry that follows the given failed attempt (1-based). It
// returns false at once if that wait would end past ctx's deadline (the retry could not finish
// in time, so the caller gets the last error now rather than DEADLINE_EXCEEDED later), or as soon
// as ctx ends.
func (c *Client) sleepBackoff(ctx context.Context, attempt int) bool {
	d := c.backoff(attempt)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return false
	}
	return sleep(ctx, d)
}

// backoff is the wait after the given failed attempt (1-based): the base doubled per attempt,
// capped, with full jitter (a random wait between zero and that), so that clients that failed
// together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	return fullJitter(c.cfg.backoff, c.cfg.maxBackoff, attempt)
}

// fullJitter is a random wait between zero and base doubled once per attempt after the first
// (1-based), capped at maxWait. ServeReviews reconnects with it too, with bounds of its own.
func fullJitter(base, maxWait time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if d <= 0 {
		return 0
	}
	return mathrand.N(d + 1)
}

// sleep waits for d, or returns false as soon as ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
