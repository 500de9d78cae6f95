package council_test

// Default deadlines and retries, the same in the three clients: 30 s for a unary call and 60 s for
// a review, each one deadline over every attempt; no deadline for a watch or an await; only
// UNAVAILABLE retried, 4 attempts in all, waits of at most 100 ms, 200 ms, 400 ms … 2 s. And a
// real network that drops every connection (droppingProxy) cannot stretch a call past its one
// deadline.

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// attemptLog records, for each call attempt the client makes, its method, when it started and
// the deadline of its context; it fails the first failFirst attempts of failMethod UNAVAILABLE.
type attemptLog struct {
	failMethod string
	failFirst  int

	mu       sync.Mutex
	attempts []attempt
}

type attempt struct {
	method   string
	at       time.Time
	deadline time.Time // zero: none
}

func (l *attemptLog) record(ctx context.Context, method string) (fail bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline, _ := ctx.Deadline()
	l.attempts = append(l.attempts, attempt{method: method, at: time.Now(), deadline: deadline})
	n := 0
	for _, a := range l.attempts {
		if a.method == method {
			n++
		}
	}
	return method == l.failMethod && n <= l.failFirst
}

func (l *attemptLog) of(method string) []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []attempt
	for _, a := range l.attempts {
		if a.method == method {
			out = append(out, a)
		}
	}
	return out
}

func (l *attemptLog) options() council.Option {
	return council.WithDialOptions(
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if l.record(ctx, method) {
				return status.Error(codes.Unavailable, "injected")
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if l.record(ctx, method) {
				return nil, status.Error(codes.Unavailable, "injected")
			}
			return streamer(ctx, desc, cc, method, opts...)
		}))
}

// checkOneDeadline checks that every attempt ran under the same deadline, `want` after the call
// started (the call ran from started to ended).
func checkOneDeadline(t *testing.T, what string, attempts []attempt, started, ended time.Time, want time.Duration) {
	t.Helper()
	if len(attempts) == 0 {
		t.Fatalf("%s: no attempt", what)
	}
	for i, a := range attempts {
		if !a.deadline.Equal(attempts[0].deadline) {
			t.Errorf("%s: attempt %d ran under deadline %v, attempt 1 under %v: want one deadline for all", what, i+1, a.deadline, attempts[0].deadline)
		}
	}
	if d := attempts[0].deadline; d.Before(started.Add(want)) || d.After(ended.Add(want)) {
		t.Errorf("%s: deadline %v after the call started, want %v", what, d.Sub(started), want)
	}
}

// checkBackoff checks the waits between attempts: each at most its bound (100 ms, 200 ms, 400 ms:
// full jitter waits between zero and the bound), with slack for a loaded machine.
func checkBackoff(t *testing.T, what string, attempts []attempt) {
	t.Helper()
	bound := council.DefaultBackoff
	for i := 1; i < len(attempts); i++ {
		if gap := attempts[i].at.Sub(attempts[i-1].at); gap > bound+300*time.Millisecond {
			t.Errorf("%s: %v between attempts %d and %d, want at most %v", what, gap, i, i+1, bound)
		}
		bound = min(2*bound, council.DefaultMaxBackoff)
	}
}

func TestDefaultDeadlinesCoverEveryAttemptAndRetriesAreThoseOfTheSharedShape(t *testing.T) {
	if council.DefaultTimeout != 30*time.Second || council.DefaultReviewTimeout != 60*time.Second ||
		council.DefaultMaxAttempts != 4 || council.DefaultBackoff != 100*time.Millisecond || council.DefaultMaxBackoff != 2*time.Second {
		t.Fatalf("defaults %v %v %d %v %v, want 30s 60s 4 100ms 2s", council.DefaultTimeout, council.DefaultReviewTimeout,
			council.DefaultMaxAttempts, council.DefaultBackoff, council.DefaultMaxBackoff)
	}

	// A unary call: 3 UNAVAILABLE, then the 4th attempt (the last) succeeds.
	log := &attemptLog{failMethod: councilv1.CouncilService_GetSummary_FullMethodName, failFirst: 3}
	c := dial(t, log.options())
	started := time.Now()
	if _, err := c.Summary(context.Background()); err != nil {
		t.Fatalf("Summary after 3 UNAVAILABLE: %v, want the 4th attempt's answer", err)
	}
	got := log.of(councilv1.CouncilService_GetSummary_FullMethodName)
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4", len(got))
	}
	checkOneDeadline(t, "GetSummary", got, started, time.Now(), 30*time.Second)
	checkBackoff(t, "GetSummary", got)

	// 4 attempts in all: after the 4th UNAVAILABLE, the error.
	log = &attemptLog{failMethod: councilv1.CouncilService_GetDecision_FullMethodName, failFirst: 100}
	c = dial(t, log.options())
	if _, err := c.GetDecision(context.Background(), "dec-x"); !errors.Is(err, council.ErrUnavailable) {
		t.Errorf("GetDecision, always UNAVAILABLE: %v, want ErrUnavailable", err)
	}
	if n := len(log.of(councilv1.CouncilService_GetDecision_FullMethodName)); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}

	// A review: 2 UNAVAILABLE, then the review, all under one 60 s deadline.
	log = &attemptLog{failMethod: councilv1.CouncilService_ReviewSuggestion_FullMethodName, failFirst: 2}
	c = dial(t, log.options())
	started = time.Now()
	if _, err := c.Decide(context.Background(), newSuggestion(suggestionID(t, "s"))); err != nil {
		t.Fatal(err)
	}
	got = log.of(councilv1.CouncilService_ReviewSuggestion_FullMethodName)
	if len(got) != 3 {
		t.Fatalf("%d review attempts, want 3", len(got))
	}
	checkOneDeadline(t, "ReviewSuggestion", got, started, time.Now(), 60*time.Second)
	checkBackoff(t, "ReviewSuggestion", got)

	// A watch and an await have no deadline (the caller ends them).
	d, err := c.Decide(bounded(t, 15*time.Second), needsPeople(suggestionID(t, "pending")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := c.Watch(ctx)
	a := c.AwaitDecision(ctx, d.GetId())
	for _, s := range []interface{ WaitReady(context.Context) error }{w, a} {
		if err := s.WaitReady(bounded(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{councilv1.CouncilService_WatchDecisions_FullMethodName, councilv1.CouncilService_AwaitDecision_FullMethodName} {
		if got := log.of(m); len(got) != 1 || !got[0].deadline.IsZero() {
			t.Errorf("%s: %d calls, deadline %v; want one without a deadline", m, len(got), got[0].deadline)
		}
	}
	w.Close()
	a.Close()
}

func TestOneDeadlineBoundsAllRetriesThroughAProxyThatDropsEveryConnection(t *testing.T) {
	const hold = time.Second // each attempt waits this long for its reply, which never comes
	const deadline = 2500 * time.Millisecond
	// With a deadline per attempt, 4 attempts would take 4 × hold and more; with one deadline, the
	// call ends at it, whatever happens inside.
	const slack = 800 * time.Millisecond

	for _, tc := range []struct {
		name string
		opt  council.Option
		call func(ctx context.Context, c *council.Client) error
	}{
		{"unary", council.WithTimeout(deadline), func(ctx context.Context, c *council.Client) error {
			_, err := c.Summary(ctx)
			return err
		}},
		{"review", council.WithReviewTimeout(deadline), func(ctx context.Context, c *council.Client) error {
			_, err := c.Decide(ctx, newSuggestion(suggestionID(t, "s")))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := startDroppingProxy(t, addr, hold)
			c := dialAt(t, proxy.addr(), tc.opt)
			started := time.Now()
			err := tc.call(context.Background(), c) // no deadline of the caller's: the default's
			elapsed := time.Since(started)
			if !errors.Is(err, council.ErrDeadlineExceeded) && !errors.Is(err, council.ErrUnavailable) {
				t.Errorf("through the dropping proxy: %v, want DEADLINE_EXCEEDED (or the last UNAVAILABLE)", err)
			}
			if elapsed > deadline+slack {
				t.Errorf("the call took %v, past its deadline %v: the deadline did not bound the retries", elapsed, deadline)
			}
			if n := proxy.dropped.Load(); n < 2 {
				t.Errorf("the proxy dropped %d connections, want at least 2 (the call retried within its deadline)", n)
			}
		})
	}
}

// droppingProxy drops every connection: it forwards bytes both ways until the server's first
// reply (the first DATA frame of a stream) comes back, holds it for `hold`, then closes both sides
// without forwarding it. Each attempt of a call therefore reaches the server, waits, and fails
// UNAVAILABLE.
type droppingProxy struct {
	*tcpProxy
	dropped atomic.Int32
}

func startDroppingProxy(t *testing.T, target string, hold time.Duration) *droppingProxy {
	p := &droppingProxy{}
	p.tcpProxy = startProxy(t, target, func(_ int32, client, server net.Conn) {
		defer func() {
			_ = client.Close()
			_ = server.Close()
		}()
		if !forwardUntilFirstReply(client, server) {
			return
		}
		select {
		case <-time.After(hold):
		case <-p.closed:
		}
		p.dropped.Add(1)
	})
	return p
}
