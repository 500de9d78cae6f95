package council_test

// These tests run against a live Council server whose address (host:port) is in
// COUNCIL_TEST_ADDR. Every test uses suggestion ids unique to this run, so several runs can share
// one server, and every wait is bounded by a context deadline.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

var (
	addr  string
	runID string
)

func TestMain(m *testing.M) {
	addr = os.Getenv("COUNCIL_TEST_ADDR")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "FAIL: COUNCIL_TEST_ADDR is not set. These tests need a live Council server:\n"+
			"  (cd /path/to/council && npm start -- --addr 127.0.0.1:50051) &\n"+
			"  COUNCIL_TEST_ADDR=127.0.0.1:50051 go test ./...")
		os.Exit(1)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	runID = fmt.Sprintf("go-%d-%s", time.Now().Unix(), hex.EncodeToString(b[:]))
	os.Exit(m.Run())
}

var reviewerOrder = []councilv1.ReviewerRole{
	councilv1.ReviewerRole_REVIEWER_ROLE_SAFETY,
	councilv1.ReviewerRole_REVIEWER_ROLE_PERFORMANCE,
	councilv1.ReviewerRole_REVIEWER_ROLE_ARCHITECTURE,
	councilv1.ReviewerRole_REVIEWER_ROLE_COMPLIANCE,
	councilv1.ReviewerRole_REVIEWER_ROLE_QUALITY,
}

var seq atomic.Int64

// suggestionID returns an id that no other call, test or run uses.
func suggestionID(t *testing.T, suffix string) string {
	return fmt.Sprintf("%s-%d-%s-%s", runID, seq.Add(1), t.Name(), suffix)
}

// newSuggestion returns a valid low-risk, auto-fixable suggestion.
func newSuggestion(id string) *councilv1.Suggestion {
	return &councilv1.Suggestion{
		Id:              id,
		Title:           "Add retry to flaky HTTP call",
		Description:     "Wrap the fetch in a bounded retry with backoff.",
		Reasoning:       "The upstream drops one request in a thousand.",
		Risk:            councilv1.RiskLevel_RISK_LEVEL_LOW,
		Impact:          councilv1.ImpactLevel_IMPACT_LEVEL_LOW,
		AutoFixable:     true,
		FixSteps:        []string{"Wrap the call", "Add a test"},
		FilesAffected:   []string{"src/http.ts"},
		EstimatedEffort: councilv1.Effort_EFFORT_SMALL,
	}
}

// bounded returns a context that ends after d, cancelled when the test ends.
func bounded(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, opts ...council.Option) *council.Client {
	t.Helper()
	c, err := council.Dial(bounded(t, 10*time.Second), addr, opts...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReviewStreamsFiveVotesInReviewerOrderThenTheDecision(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)
	s := newSuggestion(suggestionID(t, "raw"))

	// On the wire: five vote events in reviewer order, then the decision, then a clean end, and
	// every event carries the same decision id and the suggestion id.
	stream, err := c.Raw().ReviewSuggestion(ctx, &councilv1.ReviewSuggestionRequest{Suggestion: s, RequestId: council.NewRequestID()})
	if err != nil {
		t.Fatal(err)
	}
	var events []*councilv1.ReviewSuggestionResponse
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v after %d events", err, len(events))
		}
		events = append(events, ev)
	}
	if len(events) != 6 {
		t.Fatalf("got %d events, want 5 votes and a decision", len(events))
	}
	decisionID := events[5].GetDecisionId()
	if !strings.HasPrefix(decisionID, "dec-") {
		t.Errorf("decision id %q does not start with dec-", decisionID)
	}
	for i, ev := range events {
		if ev.GetDecisionId() != decisionID || ev.GetSuggestionId() != s.GetId() {
			t.Errorf("event %d carries decision %q suggestion %q, want %q %q", i, ev.GetDecisionId(), ev.GetSuggestionId(), decisionID, s.GetId())
		}
		if i < 5 {
			if ev.GetVote() == nil {
				t.Fatalf("event %d is not a vote: %v", i, ev)
			}
			if got := ev.GetVote().GetReviewerRole(); got != reviewerOrder[i] {
				t.Errorf("vote %d is from %v, want %v", i, got, reviewerOrder[i])
			}
		}
	}
	if d := events[5].GetDecision(); d == nil || d.GetId() != decisionID {
		t.Fatalf("last event is not the decision %q: %v", decisionID, events[5])
	}

	// Through the client: the iterator yields each vote in order, then the decision, every event
	// with the decision's id, and the votes are the decision's.
	var seen []*councilv1.Vote
	var d *councilv1.Decision
	ids := map[string]int{}
	for ev, err := range c.Review(ctx, newSuggestion(suggestionID(t, "client"))) {
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			t.Fatalf("an event after the decision: %+v", ev)
		}
		ids[ev.DecisionID]++
		if ev.Vote != nil {
			seen = append(seen, ev.Vote)
		} else {
			d = ev.Decision
		}
	}
	if d == nil {
		t.Fatal("the review ended without a decision")
	}
	if len(ids) != 1 || ids[d.GetId()] != 6 {
		t.Errorf("decision ids of the events %v, want %s on all 6", ids, d.GetId())
	}
	if len(seen) != 5 {
		t.Fatalf("%d votes yielded, want 5", len(seen))
	}
	for i, v := range seen {
		if v.GetReviewerRole() != reviewerOrder[i] {
			t.Errorf("vote %d is from %v, want %v", i, v.GetReviewerRole(), reviewerOrder[i])
		}
		if !proto.Equal(v, d.GetVotes()[i]) {
			t.Errorf("streamed vote %d differs from the decision's: %v vs %v", i, v, d.GetVotes()[i])
		}
	}
	if d.GetDecision() != councilv1.DecisionType_DECISION_TYPE_AUTO_APPROVE {
		t.Errorf("decision is %v, want AUTO_APPROVE for a low-risk auto-fixable suggestion", d.GetDecision())
	}
	got, err := c.GetDecision(ctx, d.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetId() != d.GetId() || !proto.Equal(got.GetSuggestion(), d.GetSuggestion()) {
		t.Errorf("GetDecision returned %v, want %v", got, d)
	}
}

func TestReviewWithTheSameRequestIDReplaysTheDecision(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)
	s := newSuggestion(suggestionID(t, "s"))
	rid := council.NewRequestID()

	first, err := c.Decide(ctx, s, council.WithRequestID(rid))
	if err != nil {
		t.Fatal(err)
	}
	votes := 0
	var again *councilv1.Decision
	for ev, err := range c.Review(ctx, s, council.WithRequestID(rid)) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Vote != nil {
			votes++
		}
		if ev.DecisionID != first.GetId() {
			t.Errorf("a replayed event carries decision id %q, want %q", ev.DecisionID, first.GetId())
		}
		again = ev.Decision
	}
	if again.GetId() != first.GetId() {
		t.Errorf("repeat got decision %q, want the first one %q", again.GetId(), first.GetId())
	}
	if votes != 5 {
		t.Errorf("replay streamed %d votes, want 5", votes)
	}
	if n := countDecisions(t, c, s.GetId()); n != 1 {
		t.Errorf("%d decisions stored for the suggestion, want 1", n)
	}

	changed := proto.Clone(s).(*councilv1.Suggestion)
	changed.Title = "Something else entirely"
	_, err = c.Decide(ctx, changed, council.WithRequestID(rid))
	if !council.IsFailedPrecondition(err) {
		t.Errorf("same request id with another suggestion: got %v, want FAILED_PRECONDITION", err)
	}
}

// flakyReviews fails the first ReviewSuggestion call with UNAVAILABLE after it has received
// failAfter events, and records the request id of every call.
type flakyReviews struct {
	failAfter int
	mu        sync.Mutex
	ids       []string
}

func (f *flakyReviews) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != councilv1.CouncilService_ReviewSuggestion_FullMethodName {
		return cs, err
	}
	f.mu.Lock()
	first := len(f.ids) == 0
	f.mu.Unlock()
	s := &flakyStream{ClientStream: cs, owner: f, failAfter: -1}
	if first {
		s.failAfter = f.failAfter
	}
	return s, nil
}

type flakyStream struct {
	grpc.ClientStream
	owner     *flakyReviews
	failAfter int
	received  int
}

func (s *flakyStream) SendMsg(m any) error {
	if r, ok := m.(*councilv1.ReviewSuggestionRequest); ok {
		s.owner.mu.Lock()
		s.owner.ids = append(s.owner.ids, r.GetRequestId())
		s.owner.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func (s *flakyStream) RecvMsg(m any) error {
	if s.received == s.failAfter {
		return status.Error(codes.Unavailable, "injected: connection lost")
	}
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.received++
	}
	return err
}

func TestReviewRetriesUnavailableWithTheSameRequestID(t *testing.T) {
	flaky := &flakyReviews{failAfter: 2}
	c := dial(t,
		council.WithRetry(3, 10*time.Millisecond, 50*time.Millisecond),
		council.WithDialOptions(grpc.WithStreamInterceptor(flaky.intercept)))
	ctx := bounded(t, 15*time.Second)
	s := newSuggestion(suggestionID(t, "s"))

	var roles []councilv1.ReviewerRole
	var d *councilv1.Decision
	for ev, err := range c.Review(ctx, s) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Vote != nil {
			roles = append(roles, ev.Vote.GetReviewerRole())
		}
		d = ev.Decision
	}
	flaky.mu.Lock()
	ids := append([]string(nil), flaky.ids...)
	flaky.mu.Unlock()
	if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
		t.Fatalf("request ids sent: %q, want one generated id sent twice", ids)
	}
	if len(roles) != 5 {
		t.Fatalf("the review yielded %d votes across the retry, want each of the 5 once: %v", len(roles), roles)
	}
	for i, r := range roles {
		if r != reviewerOrder[i] {
			t.Errorf("vote %d from %v, want %v", i, r, reviewerOrder[i])
		}
	}
	var stored []string
	for got, err := range c.ListDecisions(ctx, council.DecisionFilter{SuggestionID: s.GetId()}) {
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, got.GetId())
	}
	if len(stored) != 1 || stored[0] != d.GetId() {
		t.Errorf("stored decisions %q, want only %q", stored, d.GetId())
	}
}

func TestRetryIsBoundedAndOnlyForUnavailable(t *testing.T) {
	var calls atomic.Int32
	code := codes.Unavailable
	failing := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		calls.Add(1)
		return status.Error(code, "injected")
	}
	c := dial(t,
		council.WithRetry(3, time.Millisecond, 5*time.Millisecond),
		council.WithDialOptions(grpc.WithUnaryInterceptor(failing)))
	ctx := bounded(t, 10*time.Second)

	_, err := c.Summary(ctx)
	if !council.IsUnavailable(err) || calls.Load() != 3 {
		t.Errorf("after UNAVAILABLE: %v in %d calls, want UNAVAILABLE after 3", err, calls.Load())
	}
	calls.Store(0)
	code = codes.InvalidArgument
	_, err = c.GetDecision(ctx, "dec-x")
	if !council.IsInvalidArgument(err) || calls.Load() != 1 {
		t.Errorf("after INVALID_ARGUMENT: %v in %d calls, want it after 1", err, calls.Load())
	}
}

func countDecisions(t *testing.T, c *council.Client, suggestionID string) int {
	t.Helper()
	n := 0
	for _, err := range c.ListDecisions(bounded(t, 10*time.Second), council.DecisionFilter{SuggestionID: suggestionID}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func TestListDecisionsWalksEveryPage(t *testing.T) {
	const reviews, pageSize = 120, 25
	c := dial(t)
	ctx := bounded(t, 60*time.Second)
	s := newSuggestion(suggestionID(t, "paged"))

	made := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, reviews)
	sem := make(chan struct{}, 8)
	for range reviews {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := c.Decide(ctx, s)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			made[d.GetId()] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(made) != reviews {
		t.Fatalf("%d distinct decisions from %d reviews", len(made), reviews)
	}

	// The iterator walks to the end and yields each decision exactly once.
	seen := make(map[string]int)
	for d, err := range c.ListDecisions(ctx, council.DecisionFilter{SuggestionID: s.GetId(), PageSize: pageSize}) {
		if err != nil {
			t.Fatal(err)
		}
		if d.GetSuggestionId() != s.GetId() {
			t.Errorf("filter let through decision %s of suggestion %s", d.GetId(), d.GetSuggestionId())
		}
		seen[d.GetId()]++
	}
	for id := range made {
		if seen[id] != 1 {
			t.Errorf("decision %s listed %d times, want once", id, seen[id])
		}
	}
	if len(seen) != reviews {
		t.Errorf("listed %d distinct decisions, want %d", len(seen), reviews)
	}

	// On the wire: four full pages, a last page of 20, and no token after it.
	var sizes []int
	token := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("more than 10 pages for 120 decisions at 25 a page")
		}
		res, err := c.Raw().ListDecisions(ctx, &councilv1.ListDecisionsRequest{SuggestionId: s.GetId(), PageSize: pageSize, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(res.GetDecisions()))
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	if fmt.Sprint(sizes) != "[25 25 25 25 20]" {
		t.Errorf("page sizes %v, want [25 25 25 25 20]", sizes)
	}

	// Breaking out of the loop stops the walk.
	n := 0
	for _, err := range c.ListDecisions(ctx, council.DecisionFilter{SuggestionID: s.GetId(), PageSize: pageSize}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 30 {
			break
		}
	}
	if n != 30 {
		t.Errorf("stopped after %d, want 30", n)
	}
}

func TestInvalidArgumentNamesTheField(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 10*time.Second)
	cases := []struct {
		name  string
		edit  func(*councilv1.Suggestion) *councilv1.Suggestion
		field string
	}{
		{"empty title", func(s *councilv1.Suggestion) *councilv1.Suggestion { s.Title = ""; return s }, "suggestion.title"},
		{"blank id", func(s *councilv1.Suggestion) *councilv1.Suggestion { s.Id = "  "; return s }, "suggestion.id"},
		{"risk unspecified", func(s *councilv1.Suggestion) *councilv1.Suggestion {
			s.Risk = councilv1.RiskLevel_RISK_LEVEL_UNSPECIFIED
			return s
		}, "suggestion.risk"},
		{"impact unspecified", func(s *councilv1.Suggestion) *councilv1.Suggestion {
			s.Impact = councilv1.ImpactLevel_IMPACT_LEVEL_UNSPECIFIED
			return s
		}, "suggestion.impact"},
		{"unknown enum number", func(s *councilv1.Suggestion) *councilv1.Suggestion { s.Risk = 99; return s }, "suggestion.risk"},
		{"missing suggestion", func(*councilv1.Suggestion) *councilv1.Suggestion { return nil }, "suggestion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Decide(ctx, tc.edit(newSuggestion(suggestionID(t, "bad"))))
			if !council.IsInvalidArgument(err) {
				t.Fatalf("got %v, want INVALID_ARGUMENT", err)
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") {
				t.Errorf("status %v, want INVALID_ARGUMENT naming %s", st, tc.field)
			}
			var grpcErr interface{ GRPCStatus() *status.Status }
			if !errors.As(fmt.Errorf("wrapped: %w", err), &grpcErr) {
				t.Error("a wrapped error lost its gRPC status")
			}
		})
	}

	d, err := c.Decide(ctx, newSuggestion(suggestionID(t, "ok")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_UNSPECIFIED, "", "")
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "outcome") {
		t.Errorf("RecordOutcome(UNSPECIFIED): %v, want INVALID_ARGUMENT naming outcome", err)
	}
	_, err = c.RecordOutcome(ctx, "dec-does-not-exist-"+runID, councilv1.Outcome_OUTCOME_SUCCESS, "", "")
	if !council.IsNotFound(err) {
		t.Errorf("RecordOutcome(unknown): %v, want NOT_FOUND", err)
	}
	if _, err := c.GetDecision(ctx, "dec-does-not-exist-"+runID); !council.IsNotFound(err) {
		t.Errorf("GetDecision(unknown): %v, want NOT_FOUND", err)
	}
}

func TestWatchReceivesReviewsStoredAfterItBegan(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 30*time.Second)
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()

	w := c.Watch(watchCtx, council.WatchVotes())
	if err := w.WaitReady(ctx); err != nil {
		t.Fatalf("the watch did not become live: %v", err)
	}
	events := make(chan *councilv1.WatchDecisionsResponse, 1024)
	watchErr := make(chan error, 1)
	go func() {
		defer close(events)
		for ev, err := range w.All() {
			if err != nil {
				watchErr <- err
				return
			}
			events <- ev
		}
	}()

	// awaitReview waits up to d for the votes and decision of decisionID and checks their order.
	awaitReview := func(decisionID string, d time.Duration) (bool, []string) {
		var others []string // decision ids of events seen meanwhile
		timer := time.NewTimer(d)
		defer timer.Stop()
		votes := 0
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("watch ended: %v", <-watchErr)
				}
				if ev.GetDecisionId() != decisionID {
					others = append(others, ev.GetDecisionId())
					continue
				}
				if ev.GetVote() != nil {
					if ev.GetVote().GetReviewerRole() != reviewerOrder[votes] {
						t.Errorf("watched vote %d from %v, want %v", votes, ev.GetVote().GetReviewerRole(), reviewerOrder[votes])
					}
					votes++
					continue
				}
				if votes != 5 {
					t.Errorf("decision watched after %d votes, want 5", votes)
				}
				if ev.GetDecision().GetId() != decisionID {
					t.Errorf("watched decision %v, want %s", ev.GetDecision(), decisionID)
				}
				return true, others
			case <-timer.C:
				return false, others
			}
		}
	}

	// Live (the server sent its headers): a review stored from now on is sent, the first included.
	first, err := c.Decide(ctx, newSuggestion(suggestionID(t, "first")))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := awaitReview(first.GetId(), 10*time.Second); !ok {
		t.Fatalf("the first review after the watch was live, %s, did not reach it", first.GetId())
	}

	// A dry run is not sent, a real review is, and so is its replay not.
	dry, err := c.Decide(ctx, newSuggestion(suggestionID(t, "dry")), council.DryRun())
	if err != nil {
		t.Fatal(err)
	}
	s := newSuggestion(suggestionID(t, "real"))
	rid := council.NewRequestID()
	d, err := c.Decide(ctx, s, council.WithRequestID(rid))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decide(ctx, s, council.WithRequestID(rid)); err != nil {
		t.Fatal(err)
	}
	marker, err := c.Decide(ctx, newSuggestion(suggestionID(t, "marker")))
	if err != nil {
		t.Fatal(err)
	}
	ok, before := awaitReview(d.GetId(), 10*time.Second)
	if !ok {
		t.Fatalf("the review %s did not reach the watch", d.GetId())
	}
	for _, id := range before {
		if id == dry.GetId() {
			t.Errorf("the dry run %s was sent to the watch", id)
		}
	}
	ok, between := awaitReview(marker.GetId(), 10*time.Second)
	if !ok {
		t.Fatalf("the review %s did not reach the watch", marker.GetId())
	}
	for _, id := range between {
		if id == d.GetId() {
			t.Errorf("the idempotent replay of %s was sent to the watch again", id)
		}
	}

	// Cancelled by its caller, the watch ends cleanly: no error.
	stop()
	timeout := time.After(5 * time.Second)
	for ended := false; !ended; {
		select {
		case _, ok := <-events:
			ended = !ok
		case <-timeout:
			t.Fatal("the watch did not end after its context was cancelled")
		}
	}
	select {
	case err := <-watchErr:
		t.Errorf("the cancelled watch ended with %v, want no error", err)
	default:
	}
}

func TestDryRunStreamsVotesAndStoresNothing(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 10*time.Second)
	s := newSuggestion(suggestionID(t, "dry"))

	votes := 0
	var d *councilv1.Decision
	for ev, err := range c.Review(ctx, s, council.DryRun()) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Vote != nil {
			votes++
		}
		d = ev.Decision
	}
	if votes != 5 || len(d.GetVotes()) != 5 {
		t.Errorf("dry run streamed %d votes and decided on %d, want 5 and 5", votes, len(d.GetVotes()))
	}
	if !strings.HasPrefix(d.GetId(), "dec-") {
		t.Errorf("dry-run decision id %q does not start with dec-", d.GetId())
	}
	if _, err := c.GetDecision(ctx, d.GetId()); !council.IsNotFound(err) {
		t.Errorf("GetDecision(dry run): %v, want NOT_FOUND", err)
	}
	if n := countDecisions(t, c, s.GetId()); n != 0 {
		t.Errorf("dry run stored %d decisions", n)
	}
}

func TestOutcomeSummaryLessonsAndReviewers(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)

	d, err := c.Decide(ctx, newSuggestion(suggestionID(t, "s")))
	if err != nil {
		t.Fatal(err)
	}
	lesson := "retry budgets need a cap " + runID
	updated, err := c.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "shipped", lesson)
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetOutcome() != councilv1.Outcome_OUTCOME_SUCCESS || updated.GetLessonsLearned() != lesson ||
		updated.GetOutcomeNotes() != "shipped" || updated.GetImplementedAt() == nil {
		t.Errorf("RecordOutcome returned %v", updated)
	}

	found := false
	for l, err := range c.Lessons(ctx, 10) {
		if err != nil {
			t.Fatal(err)
		}
		if l.GetDecisionId() == d.GetId() {
			found = l.GetLessons() == lesson && l.GetOutcome() == councilv1.Outcome_OUTCOME_SUCCESS
			break
		}
	}
	if !found {
		t.Error("the recorded lesson is not listed")
	}

	sum, err := c.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetTotalDecisions() < 1 || sum.GetLearningEntries() < 1 || sum.GetOutcomes()["success"] < 1 {
		t.Errorf("summary %v does not count the review and its outcome", sum)
	}

	rev, err := c.Reviewers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rev.GetReviewers()) != 5 {
		t.Fatalf("%d reviewers, want 5", len(rev.GetReviewers()))
	}
	for i, r := range rev.GetReviewers() {
		if r.GetRole() != reviewerOrder[i] {
			t.Errorf("reviewer %d is %v, want %v", i, r.GetRole(), reviewerOrder[i])
		}
	}
	if rev.GetPolicyVersion() == "" || rev.GetPolicyVersion() != d.GetPolicyVersion() {
		t.Errorf("policy version %q, decision recorded %q", rev.GetPolicyVersion(), d.GetPolicyVersion())
	}
}

// TestTokenIsSentAsBearer checks the metadata on the wire, over plaintext and over TLS, with a
// stand-in server that records it.
func TestTokenIsSentAsBearer(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name   string
		server []grpc.ServerOption
		client []council.Option
	}{
		{"plaintext", nil, nil},
		{"tls", []grpc.ServerOption{grpc.Creds(credentials.NewServerTLSFromCert(&cert))},
			[]council.Option{council.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 1)
			srv := grpc.NewServer(append(tc.server, grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
				md, _ := metadata.FromIncomingContext(stream.Context())
				got <- strings.Join(md.Get("authorization"), ",")
				return status.Error(codes.Unimplemented, "stand-in")
			}))...)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(srv.Stop)

			c, err := council.Dial(bounded(t, 5*time.Second), lis.Addr().String(), append(tc.client, council.WithToken("s3cret"))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Summary(bounded(t, 5*time.Second))
			if council.Code(err) != codes.Unimplemented {
				t.Errorf("got %v, want the stand-in's UNIMPLEMENTED", err)
			}
			select {
			case h := <-got:
				if h != "Bearer s3cret" {
					t.Errorf("authorization %q, want %q", h, "Bearer s3cret")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the stand-in server saw no call")
			}
		})
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "council test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestDialFailsUnavailableWhenNothingListens(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close()

	start := time.Now()
	_, err = council.Dial(bounded(t, 10*time.Second), dead)
	if !council.IsUnavailable(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Dial(%s): %v, want UNAVAILABLE saying connection refused", dead, err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Dial took %v to find nothing listening; it should fail at the first attempt", elapsed)
	}

	// A server that accepts but never answers keeps the attempt going; the deadline ends Dial.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		for {
			conn, err := silent.Accept()
			if err != nil { // the listener was closed: the test is over
				for _, c := range held {
					_ = c.Close()
				}
				return
			}
			held = append(held, conn)
		}
	}()
	start = time.Now()
	_, err = council.Dial(bounded(t, 300*time.Millisecond), silent.Addr().String())
	if !council.IsUnavailable(err) || time.Since(start) > 3*time.Second {
		t.Errorf("Dial(silent server) with a 300ms deadline: %v after %v, want UNAVAILABLE promptly", err, time.Since(start))
	}
}
