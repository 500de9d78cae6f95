package council

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackoffIsFullJitterUpToADoublingBound(t *testing.T) {
	c := &Client{cfg: config{maxAttempts: DefaultMaxAttempts, backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff}}
	for attempt, bound := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		5: 1600 * time.Millisecond, 6: 2 * time.Second, 20: 2 * time.Second,
	} {
		lowest, highest := bound, time.Duration(0)
		for range 2000 {
			d := c.backoff(attempt)
			if d < 0 || d > bound {
				t.Fatalf("attempt %d: waited %v, want between 0 and %v", attempt, d, bound)
			}
			lowest, highest = min(lowest, d), max(highest, d)
		}
		// Full jitter spreads the waits over all of [0, bound] (equal jitter never goes under
		// half of it). Out of 2000 uniform draws, none in a tenth at either end has odds 0.9^2000.
		if lowest > bound/10 || highest < bound*9/10 {
			t.Errorf("attempt %d: waits from %v to %v, want them spread over 0 to %v", attempt, lowest, highest, bound)
		}
	}
}

func TestARetryWaitThatWouldEndPastTheDeadlineIsNotWaited(t *testing.T) {
	// Waits drawn from [0, 10,000 h] against 10 s left: all but about one draw in 3.6 million end
	// past the deadline, and retry returns the UNAVAILABLE at once instead of sleeping until the
	// deadline. (The deadline is far off so that a slow machine cannot reach it by itself.)
	const left = 10 * time.Second
	c := &Client{cfg: config{maxAttempts: DefaultMaxAttempts, backoff: 10000 * time.Hour, maxBackoff: 10000 * time.Hour}}
	ctx, cancel := context.WithTimeout(context.Background(), left)
	defer cancel()
	started := time.Now()
	attempts := 0
	err := c.retry(ctx, func(context.Context) error {
		attempts++
		return status.Error(codes.Unavailable, "injected")
	})
	if Code(err) != codes.Unavailable || attempts != 1 {
		t.Errorf("retry: %v after %d attempts, want the UNAVAILABLE of the one attempt", err, attempts)
	}
	if elapsed := time.Since(started); elapsed > left/2 {
		t.Errorf("retry returned after %v, want at once (not at the deadline)", elapsed)
	}
}
