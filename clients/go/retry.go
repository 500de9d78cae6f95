package council

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	mathrand "math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
)

// NewRequestID returns a random idempotency key (32 hex digits) for ReviewSuggestion or
// RecordOutcome. Review and RecordOutcome make one themselves; make your own and pass it with
// WithRequestID or WithOutcomeRequestID when a retry may come from another process, for example
// after a restart.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}

// retry runs call until it succeeds, fails with a code other than UNAVAILABLE, has been tried
// maxAttempts times, or ctx is done; it returns the last attempt's error.
func (c *Client) retry(ctx context.Context, call func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || Code(err) != codes.Unavailable || attempt >= c.cfg.maxAttempts {
			return err
		}
		if !sleep(ctx, c.backoff(attempt)) {
			return err
		}
	}
}

// backoff is the wait after the given failed attempt (1-based): the base doubled per attempt,
// capped, with "equal jitter" so that clients that failed together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.backoff
	for i := 1; i < attempt && d < c.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.maxBackoff)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + mathrand.N(d-half+1)
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
