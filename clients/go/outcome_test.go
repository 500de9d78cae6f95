package council_test

// Idempotent outcomes (AIP-155): a request id records once, a reused one with another outcome
// fails FAILED_PRECONDITION, and a retry after a reply lost mid-flight (a real network fault,
// through faultyProxy) records once. The exact learning_entries deltas assume nothing else
// records outcomes on the server during a test; the per-decision lesson counts hold regardless.

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// lessonsOf returns the lessons recorded for one decision, newest first.
func lessonsOf(t *testing.T, c *council.Client, decisionID string) []string {
	t.Helper()
	var got []string
	for l, err := range c.Lessons(bounded(t, 10*time.Second), 500) {
		if err != nil {
			t.Fatal(err)
		}
		if l.GetDecisionId() == decisionID {
			got = append(got, l.GetLessons())
		}
	}
	return got
}

func learningEntries(t *testing.T, c *council.Client) int64 {
	t.Helper()
	sum, err := c.Summary(bounded(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return sum.GetLearningEntries()
}

// outcomeCalls records the request id and the status code of every RecordOutcome attempt.
type outcomeCalls struct {
	mu    sync.Mutex
	ids   []string
	codes []codes.Code
}

func (o *outcomeCalls) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if r, ok := req.(*councilv1.RecordOutcomeRequest); ok {
		o.mu.Lock()
		o.ids = append(o.ids, r.GetRequestId())
		o.codes = append(o.codes, status.Code(err))
		o.mu.Unlock()
	}
	return err
}

func (o *outcomeCalls) snapshot() ([]string, []codes.Code) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ids...), append([]codes.Code(nil), o.codes...)
}

func TestRecordOutcomeWithTheSameRequestIDRecordsOnce(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)
	d, err := c.Decide(ctx, newSuggestion(suggestionID(t, "s")))
	if err != nil {
		t.Fatal(err)
	}
	rid := council.NewRequestID()
	before := learningEntries(t, c)

	first, err := c.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "deployed", "once", council.WithOutcomeRequestID(rid))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "deployed", "once", council.WithOutcomeRequestID(rid))
	if err != nil {
		t.Fatal(err)
	}
	if first.GetId() != d.GetId() || first.GetOutcome() != councilv1.Outcome_OUTCOME_SUCCESS ||
		first.GetOutcomeNotes() != "deployed" || first.GetLessonsLearned() != "once" {
		t.Errorf("RecordOutcome returned %v", first)
	}
	if !proto.Equal(again, first) {
		t.Errorf("the repeat returned %v, want the decision as first recorded %v", again, first)
	}
	if delta := learningEntries(t, c) - before; delta != 1 {
		t.Errorf("learning_entries grew by %d, want 1", delta)
	}
	if got := lessonsOf(t, c, d.GetId()); len(got) != 1 || got[0] != "once" {
		t.Errorf("lessons of the decision: %q, want [once]", got)
	}

	// Without WithOutcomeRequestID every call gets its own id, so each records.
	before = learningEntries(t, c)
	for range 2 {
		if _, err := c.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_PARTIAL, "", "twice"); err != nil {
			t.Fatal(err)
		}
	}
	if delta := learningEntries(t, c) - before; delta != 2 {
		t.Errorf("two calls without a request id: learning_entries grew by %d, want 2", delta)
	}
}

func TestRecordOutcomeReusedRequestIDWithAnotherOutcomeFailsPrecondition(t *testing.T) {
	calls := &outcomeCalls{}
	c := dial(t, council.WithDialOptions(grpc.WithUnaryInterceptor(calls.intercept)))
	ctx := bounded(t, 15*time.Second)
	d, err := c.Decide(ctx, newSuggestion(suggestionID(t, "s")))
	if err != nil {
		t.Fatal(err)
	}
	rid := council.NewRequestID()
	recorded, err := c.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "notes", "lesson", council.WithOutcomeRequestID(rid))
	if err != nil {
		t.Fatal(err)
	}
	before := learningEntries(t, c)

	for _, tc := range []struct {
		name           string
		outcome        councilv1.Outcome
		notes, lessons string
	}{
		{"outcome", councilv1.Outcome_OUTCOME_FAILURE, "notes", "lesson"},
		{"notes", councilv1.Outcome_OUTCOME_SUCCESS, "other notes", "lesson"},
		{"lessons", councilv1.Outcome_OUTCOME_SUCCESS, "notes", "another lesson"},
	} {
		_, err := c.RecordOutcome(ctx, d.GetId(), tc.outcome, tc.notes, tc.lessons, council.WithOutcomeRequestID(rid))
		st, ok := status.FromError(err)
		if !ok || st.Code() != codes.FailedPrecondition || !council.IsFailedPrecondition(err) || !strings.Contains(st.Message(), rid) {
			t.Errorf("same request id, another %s: %v, want FAILED_PRECONDITION naming the request id", tc.name, err)
		}
	}
	ids, codesSeen := calls.snapshot()
	if len(ids) != 4 || len(codesSeen) != 4 {
		t.Errorf("%d RecordOutcome attempts, want 4 (FAILED_PRECONDITION is not retried)", len(ids))
	}
	for i, id := range ids {
		if id != rid {
			t.Errorf("attempt %d sent request id %q, want %q", i, id, rid)
		}
	}

	got, err := c.GetDecision(ctx, d.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, recorded) {
		t.Errorf("the decision changed to %v, want it as recorded %v", got, recorded)
	}
	if delta := learningEntries(t, c) - before; delta != 0 {
		t.Errorf("learning_entries grew by %d, want 0", delta)
	}
	if n := len(lessonsOf(t, c, d.GetId())); n != 1 {
		t.Errorf("%d lessons for the decision, want 1", n)
	}
}

func TestRecordOutcomeIsRetriedWithTheSameRequestID(t *testing.T) {
	var ids []string
	failing := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*councilv1.RecordOutcomeRequest); ok {
			ids = append(ids, r.GetRequestId())
		}
		return status.Error(codes.Unavailable, "injected")
	}
	c := dial(t,
		council.WithRetry(3, time.Millisecond, 5*time.Millisecond),
		council.WithDialOptions(grpc.WithUnaryInterceptor(failing)))
	_, err := c.RecordOutcome(bounded(t, 10*time.Second), "dec-x", councilv1.Outcome_OUTCOME_SUCCESS, "", "")
	if !council.IsUnavailable(err) || len(ids) != 3 || ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("RecordOutcome after UNAVAILABLE: %v with request ids %q, want UNAVAILABLE after 3 attempts with one generated id", err, ids)
	}
}

func TestRecordOutcomeRetryAfterALostReplyRecordsOnce(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)
	d, err := c.Decide(ctx, newSuggestion(suggestionID(t, "s")))
	if err != nil {
		t.Fatal(err)
	}

	proxy := startFaultyProxy(t, addr)
	calls := &outcomeCalls{}
	flaky, err := council.Dial(bounded(t, 10*time.Second), proxy.addr(),
		council.WithRetry(5, 20*time.Millisecond, 200*time.Millisecond),
		council.WithDialOptions(grpc.WithUnaryInterceptor(calls.intercept)))
	if err != nil {
		t.Fatal(err)
	}
	defer flaky.Close()

	before := learningEntries(t, c)
	lesson := "lost reply " + runID
	updated, err := flaky.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "deployed", lesson)
	if err != nil {
		t.Fatalf("RecordOutcome through the faulty proxy: %v", err)
	}
	if n := proxy.cuts.Load(); n != 1 {
		t.Fatalf("the proxy cut %d connections, want 1: the test did not lose a reply", n)
	}
	if n := proxy.conns.Load(); n != 2 {
		t.Errorf("the proxy saw %d connections, want 2 (the cut one, then the retry's)", n)
	}

	ids, codesSeen := calls.snapshot()
	if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
		t.Errorf("request ids sent: %q, want one generated id sent twice", ids)
	}
	if len(codesSeen) != 2 || codesSeen[0] != codes.Unavailable || codesSeen[1] != codes.OK {
		t.Errorf("attempts ended %v, want [Unavailable OK]", codesSeen)
	}
	if updated.GetId() != d.GetId() || updated.GetOutcome() != councilv1.Outcome_OUTCOME_SUCCESS ||
		updated.GetOutcomeNotes() != "deployed" || updated.GetLessonsLearned() != lesson {
		t.Errorf("RecordOutcome returned %v", updated)
	}
	if delta := learningEntries(t, c) - before; delta != 1 {
		t.Errorf("learning_entries grew by %d, want exactly 1", delta)
	}
	if got := lessonsOf(t, c, d.GetId()); len(got) != 1 || got[0] != lesson {
		t.Errorf("lessons of the decision: %q, want only %q", got, lesson)
	}
}

// faultyProxy cuts the first connection when the server's first reply message arrives, without
// forwarding it: the server has handled the call and sent its reply; the client never sees it and
// finds the connection dead. Later connections pass untouched.
type faultyProxy struct {
	*tcpProxy
	cuts atomic.Int32 // connections cut with a reply in flight
}

func startFaultyProxy(t *testing.T, target string) *faultyProxy {
	p := &faultyProxy{}
	p.tcpProxy = startProxy(t, target, func(n int32, client, server net.Conn) {
		if n > 1 {
			pipe(client, server)
			return
		}
		if forwardUntilFirstReply(client, server) {
			p.cuts.Add(1)
		}
		_ = client.Close()
		_ = server.Close()
	})
	return p
}
