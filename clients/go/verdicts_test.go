package council_test

// Human verdicts (SPEC §9): Resolve, AwaitDecision and Guard, against the lifecycle server that
// the repository's test/clients.test.ts starts, given in the environment:
//
//   - COUNCIL_TEST_LIFECYCLE_ADDR: plaintext, with the auth file of principals and tokens, and a
//     policy where HUMAN_APPROVE needs 2 approvals within 10 minutes and DEFER 1 within 1 second;
//   - COUNCIL_TEST_AGENT_TOKEN / _PRINCIPAL: role agent (submits reviews);
//   - COUNCIL_TEST_APPROVER_TOKEN / _PRINCIPAL and COUNCIL_TEST_APPROVER2_TOKEN / _PRINCIPAL: two
//     principals with the role approver.
//
// Nothing sleeps for a fixed time: each step waits for the state or callback it needs, bounded.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

const (
	pendingStatus  = councilv1.DecisionStatus_DECISION_STATUS_PENDING
	approvedStatus = councilv1.DecisionStatus_DECISION_STATUS_APPROVED
	rejectedStatus = councilv1.DecisionStatus_DECISION_STATUS_REJECTED
	expiredStatus  = councilv1.DecisionStatus_DECISION_STATUS_EXPIRED
)

type lifecycleEnv struct {
	addr                 string
	agentToken, agent    string
	aliceToken, alice    string
	bobToken, bob        string
	agentC, aliceC, bobC *council.Client
}

// lifecycle reads the environment and connects as the agent and the two approvers; it fails the
// test (it does not skip) when something is missing.
func lifecycle(t *testing.T) *lifecycleEnv {
	t.Helper()
	names := []string{
		"COUNCIL_TEST_LIFECYCLE_ADDR", "COUNCIL_TEST_AGENT_TOKEN", "COUNCIL_TEST_AGENT_PRINCIPAL",
		"COUNCIL_TEST_APPROVER_TOKEN", "COUNCIL_TEST_APPROVER_PRINCIPAL",
		"COUNCIL_TEST_APPROVER2_TOKEN", "COUNCIL_TEST_APPROVER2_PRINCIPAL",
	}
	var missing []string
	for _, n := range names {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("set %s: these tests need the lifecycle server that the repository's "+
			"test/clients.test.ts starts (npx mocha test/clients.test.ts)", strings.Join(missing, ", "))
	}
	e := &lifecycleEnv{
		addr:       os.Getenv("COUNCIL_TEST_LIFECYCLE_ADDR"),
		agentToken: os.Getenv("COUNCIL_TEST_AGENT_TOKEN"),
		agent:      os.Getenv("COUNCIL_TEST_AGENT_PRINCIPAL"),
		aliceToken: os.Getenv("COUNCIL_TEST_APPROVER_TOKEN"),
		alice:      os.Getenv("COUNCIL_TEST_APPROVER_PRINCIPAL"),
		bobToken:   os.Getenv("COUNCIL_TEST_APPROVER2_TOKEN"),
		bob:        os.Getenv("COUNCIL_TEST_APPROVER2_PRINCIPAL"),
	}
	e.agentC = dialAt(t, e.addr, council.WithToken(e.agentToken))
	e.aliceC = dialAt(t, e.addr, council.WithToken(e.aliceToken))
	e.bobC = dialAt(t, e.addr, council.WithToken(e.bobToken))
	return e
}

// needsPeople: medium risk, five approvals, not auto-fixable: HUMAN_APPROVE (2 approvals, 10 min).
func needsPeople(id string) *councilv1.Suggestion {
	return &councilv1.Suggestion{
		Id:          id,
		Title:       "Reindex the orders table",
		Description: "Rebuild the index on created_at.",
		Risk:        councilv1.RiskLevel_RISK_LEVEL_MEDIUM,
		Impact:      councilv1.ImpactLevel_IMPACT_LEVEL_LOW,
		FixSteps:    []string{"Build the new index concurrently", "Drop the old one"},
	}
}

// deferred: high risk and transformative: two reviewers need more information, DEFER (1 s here).
func deferred(id string) *councilv1.Suggestion {
	return &councilv1.Suggestion{
		Id:       id,
		Title:    "Rewrite the storage engine",
		Risk:     councilv1.RiskLevel_RISK_LEVEL_HIGH,
		Impact:   councilv1.ImpactLevel_IMPACT_LEVEL_TRANSFORMATIVE,
		FixSteps: []string{"Write it", "Migrate"},
	}
}

// vetoed: a safety veto, REJECT by the council.
func vetoed(id string) *councilv1.Suggestion {
	return &councilv1.Suggestion{
		Id:     id,
		Title:  "Temporarily bypasses authentication",
		Risk:   councilv1.RiskLevel_RISK_LEVEL_MEDIUM,
		Impact: councilv1.ImpactLevel_IMPACT_LEVEL_LOW,
	}
}

// states collects the states something reports (from any goroutine); until waits, bounded, for
// one that matches.
type states struct {
	mu      sync.Mutex
	seen    []*councilv1.Decision
	changed chan struct{} // closed, and replaced, on every push
}

func newStates() *states { return &states{changed: make(chan struct{})} }

func (s *states) push(d *councilv1.Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, d)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *states) snapshot() []*councilv1.Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// shape is each state's status and number of verdicts.
func (s *states) shape() []string {
	var out []string
	for _, d := range s.snapshot() {
		out = append(out, fmt.Sprintf("%s/%d", d.GetStatus(), len(d.GetVerdicts())))
	}
	return out
}

func (s *states) until(t *testing.T, match func(*councilv1.Decision) bool, what string) *councilv1.Decision {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for _, d := range s.seen {
			if match(d) {
				s.mu.Unlock()
				return d
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no state %s within 10s; seen %v", what, s.shape())
		}
	}
}

func pendingWith(verdicts int) func(*councilv1.Decision) bool {
	return func(d *councilv1.Decision) bool {
		return d.GetStatus() == pendingStatus && len(d.GetVerdicts()) == verdicts
	}
}

func review(t *testing.T, c *council.Client, s *councilv1.Suggestion, opts ...council.ReviewOption) *councilv1.Decision {
	t.Helper()
	d, err := c.Decide(bounded(t, 15*time.Second), s, opts...)
	if err != nil {
		t.Fatalf("Review: %v", err)
	}
	return d
}

func resolve(t *testing.T, c *council.Client, id string, v councilv1.VerdictType, comment string) *councilv1.Decision {
	t.Helper()
	d, err := c.Resolve(bounded(t, 10*time.Second), id, v, comment)
	if err != nil {
		t.Fatalf("Resolve(%s, %s): %v", id, v, err)
	}
	return d
}

type guardResult struct {
	v   *council.GuardVerdict
	err error
}

// guardInBackground runs Guard in a goroutine while the test plays the approvers.
func guardInBackground(ctx context.Context, c *council.Client, s *councilv1.Suggestion, opts ...council.GuardOption) <-chan guardResult {
	done := make(chan guardResult, 1)
	go func() {
		v, err := c.Guard(ctx, s, opts...)
		done <- guardResult{v, err}
	}()
	return done
}

func wait(t *testing.T, done <-chan guardResult) (*council.GuardVerdict, error) {
	t.Helper()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Guard did not return within 30s")
		return nil, nil
	}
}

func TestResolveTwoDistinctApproversApprove(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	if d.GetDecision() != councilv1.DecisionType_DECISION_TYPE_HUMAN_APPROVE || d.GetStatus() != pendingStatus ||
		d.GetApprovalsRequired() != 2 || d.GetExpiresAt() == nil || d.GetSubmittedBy() != e.agent {
		t.Fatalf("the review: %v %v, %d approvals, expires %v, by %q; want a pending HUMAN_APPROVE needing 2, by %q",
			d.GetDecision(), d.GetStatus(), d.GetApprovalsRequired(), d.GetExpiresAt(), d.GetSubmittedBy(), e.agent)
	}

	first := resolve(t, e.aliceC, d.GetId(), council.Approve, "index looks right")
	if first.GetStatus() != pendingStatus || len(first.GetVerdicts()) != 1 ||
		first.GetVerdicts()[0].GetBy() != e.alice || first.GetVerdicts()[0].GetComment() != "index looks right" ||
		first.GetVerdicts()[0].GetVerdict() != council.Approve {
		t.Fatalf("after alice's approval: %v with verdicts %v", first.GetStatus(), first.GetVerdicts())
	}
	// The same verdict again (another request id) returns the decision as it is.
	if again := resolve(t, e.aliceC, d.GetId(), council.Approve, ""); len(again.GetVerdicts()) != 1 {
		t.Errorf("a repeated approval counted again: %v", again.GetVerdicts())
	}
	ctx := bounded(t, 10*time.Second)
	if _, err := e.aliceC.Resolve(ctx, d.GetId(), council.Reject, "changed my mind"); !errors.Is(err, council.ErrFailedPrecondition) {
		t.Errorf("the other verdict from the same principal: %v, want FAILED_PRECONDITION", err)
	}
	if _, err := e.agentC.Resolve(ctx, d.GetId(), council.Approve, ""); !errors.Is(err, council.ErrPermissionDenied) {
		t.Errorf("a verdict from the agent (no approver role): %v, want PERMISSION_DENIED", err)
	}

	approved := resolve(t, e.bobC, d.GetId(), council.Approve, "")
	if approved.GetStatus() != approvedStatus {
		t.Fatalf("after two approvals: %v, want APPROVED", approved.GetStatus())
	}
	var by []string
	for _, v := range approved.GetVerdicts() {
		by = append(by, v.GetBy())
	}
	if !slices.Equal(by, []string{e.alice, e.bob}) {
		t.Errorf("verdicts by %q, want alice then bob", by)
	}
	if _, err := e.agentC.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "", ""); err != nil {
		t.Errorf("RecordOutcome on the approved decision: %v", err)
	}
}

func TestResolveRejectNeedsACommentAndClosesTheDecision(t *testing.T) {
	e := lifecycle(t)
	ctx := bounded(t, 15*time.Second)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	_, err := e.aliceC.Resolve(ctx, d.GetId(), council.Reject, "")
	var cerr *council.Error
	if !errors.As(err, &cerr) || cerr.Code != codes.InvalidArgument || cerr.Field != "comment" {
		t.Errorf("a reject without a comment: %v, want INVALID_ARGUMENT naming comment", err)
	}
	if _, err := e.agentC.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "", ""); !errors.Is(err, council.ErrFailedPrecondition) {
		t.Errorf("RecordOutcome while pending: %v, want FAILED_PRECONDITION", err)
	}

	rejected := resolve(t, e.aliceC, d.GetId(), council.Reject, "not during the sale")
	if rejected.GetStatus() != rejectedStatus || len(rejected.GetVerdicts()) != 1 ||
		rejected.GetVerdicts()[0].GetComment() != "not during the sale" || rejected.GetVerdicts()[0].GetBy() != e.alice {
		t.Fatalf("after the rejection: %v with %v", rejected.GetStatus(), rejected.GetVerdicts())
	}
	_, err = e.bobC.Resolve(ctx, d.GetId(), council.Approve, "")
	if !errors.Is(err, council.ErrFailedPrecondition) || !strings.Contains(strings.ToLower(err.Error()), "rejected") {
		t.Errorf("a verdict on a rejected decision: %v, want FAILED_PRECONDITION naming the status", err)
	}
	if _, err := e.agentC.RecordOutcome(ctx, d.GetId(), councilv1.Outcome_OUTCOME_SUCCESS, "", ""); !errors.Is(err, council.ErrFailedPrecondition) {
		t.Errorf("RecordOutcome on a rejected decision: %v, want FAILED_PRECONDITION", err)
	}
}

// verdictCalls records the request id and the status code of every ResolveDecision attempt.
type verdictCalls struct {
	mu    sync.Mutex
	ids   []string
	codes []codes.Code
}

func (v *verdictCalls) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if r, ok := req.(*councilv1.ResolveDecisionRequest); ok {
		v.mu.Lock()
		v.ids = append(v.ids, r.GetRequestId())
		v.codes = append(v.codes, status.Code(err))
		v.mu.Unlock()
	}
	return err
}

func TestResolveRetryAfterALostReplyCountsOnce(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	proxy := startFaultyProxy(t, e.addr)
	calls := &verdictCalls{}
	flaky, err := council.Dial(bounded(t, 10*time.Second), proxy.addr(),
		council.WithToken(e.aliceToken),
		council.WithRetry(5, 20*time.Millisecond, 200*time.Millisecond),
		council.WithDialOptions(grpc.WithUnaryInterceptor(calls.intercept)))
	if err != nil {
		t.Fatal(err)
	}
	defer flaky.Close()

	resolved, err := flaky.Resolve(bounded(t, 15*time.Second), d.GetId(), council.Approve, "once")
	if err != nil {
		t.Fatalf("Resolve through the faulty proxy: %v", err)
	}
	if n := proxy.cuts.Load(); n != 1 {
		t.Fatalf("the proxy cut %d connections, want 1: the test did not lose a reply", n)
	}
	calls.mu.Lock()
	ids, codesSeen := slices.Clone(calls.ids), slices.Clone(calls.codes)
	calls.mu.Unlock()
	if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
		t.Errorf("request ids sent: %q, want one generated id sent twice", ids)
	}
	if len(codesSeen) != 2 || codesSeen[0] != codes.Unavailable || codesSeen[1] != codes.OK {
		t.Errorf("attempts ended %v, want [Unavailable OK]", codesSeen)
	}
	if len(resolved.GetVerdicts()) != 1 || resolved.GetVerdicts()[0].GetBy() != e.alice {
		t.Errorf("verdicts after the retry: %v, want alice's once", resolved.GetVerdicts())
	}
	stored, err := e.agentC.GetDecision(bounded(t, 10*time.Second), d.GetId())
	if err != nil || len(stored.GetVerdicts()) != 1 {
		t.Errorf("stored verdicts: %v (%v), want 1", stored.GetVerdicts(), err)
	}
}

func TestApproversQueueAndSummaryByStatus(t *testing.T) {
	e := lifecycle(t)
	older := review(t, e.agentC, needsPeople(suggestionID(t, "old")))
	newer := review(t, e.agentC, needsPeople(suggestionID(t, "new")))
	var queue []string
	for d, err := range e.aliceC.ListDecisions(bounded(t, 15*time.Second), council.DecisionFilter{Status: pendingStatus, OldestFirst: true, PageSize: 200}) {
		if err != nil {
			t.Fatal(err)
		}
		if d.GetStatus() != pendingStatus {
			t.Fatalf("%s in the pending queue is %v", d.GetId(), d.GetStatus())
		}
		queue = append(queue, d.GetId())
	}
	i, j := slices.Index(queue, older.GetId()), slices.Index(queue, newer.GetId())
	if i < 0 || j < 0 || i > j {
		t.Errorf("the queue has the older at %d and the newer at %d, want both, older first", i, j)
	}
	sum, err := e.aliceC.Summary(bounded(t, 10*time.Second))
	if err != nil || sum.GetByStatus()["pending"] < 2 {
		t.Errorf("summary by_status %v (%v), want at least 2 pending", sum.GetByStatus(), err)
	}
}

func TestAwaitDecisionEndsAfterAnotherPrincipalsVerdicts(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	seen := newStates()
	done := make(chan error, 1)
	ctx := bounded(t, 30*time.Second)
	go func() {
		for state, err := range e.agentC.AwaitDecision(ctx, d.GetId()).All() {
			if err != nil {
				done <- err
				return
			}
			seen.push(state)
		}
		done <- nil
	}()
	seen.until(t, pendingWith(0), "pending with no verdict")
	resolve(t, e.aliceC, d.GetId(), council.Approve, "")
	seen.until(t, pendingWith(1), "pending with alice's approval")
	resolve(t, e.bobC, d.GetId(), council.Approve, "go")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("AwaitDecision: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("AwaitDecision did not end after the final status")
	}
	want := []string{"DECISION_STATUS_PENDING/0", "DECISION_STATUS_PENDING/1", "DECISION_STATUS_APPROVED/2"}
	if got := seen.shape(); !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
}

func TestAwaitDecisionCutByTheNetworkIsAwaitedAgain(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	// The proxy drops its first connection as the first state comes back: UNAVAILABLE, retried.
	proxy := startFaultyProxy(t, e.addr)
	flaky := dialAt(t, proxy.addr(), council.WithToken(e.agentToken), council.WithRetry(5, 20*time.Millisecond, 200*time.Millisecond))
	seen := newStates()
	done := make(chan error, 1)
	ctx := bounded(t, 30*time.Second)
	go func() {
		for state, err := range flaky.AwaitDecision(ctx, d.GetId()).All() {
			if err != nil {
				done <- err
				return
			}
			seen.push(state)
		}
		done <- nil
	}()
	seen.until(t, pendingWith(0), "the current state, after the retry")
	if n := proxy.cuts.Load(); n != 1 {
		t.Fatalf("the proxy cut %d connections, want 1", n)
	}
	resolve(t, e.aliceC, d.GetId(), council.Approve, "")
	resolve(t, e.bobC, d.GetId(), council.Approve, "")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("AwaitDecision through the faulty proxy: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("AwaitDecision did not end after the final status")
	}
	got := seen.shape()
	if got[len(got)-1] != "DECISION_STATUS_APPROVED/2" || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("states %v, want each once, ending approved", got)
	}
}

func TestAwaitDecisionOfAFinalDecisionSendsItOnce(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, newSuggestion(suggestionID(t, "auto")))
	var got []councilv1.DecisionStatus
	for state, err := range e.agentC.AwaitDecision(bounded(t, 10*time.Second), d.GetId()).All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, state.GetStatus())
	}
	if !slices.Equal(got, []councilv1.DecisionStatus{approvedStatus}) {
		t.Errorf("states %v, want [APPROVED]", got)
	}
}

func TestAwaitDecisionDeadlineYieldsDeadlineExceededAfterTheCurrentState(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	started := time.Now()
	var got []councilv1.DecisionStatus
	var last error
	for state, err := range e.agentC.AwaitDecision(ctx, d.GetId()).All() {
		if err != nil {
			last = err
			break
		}
		got = append(got, state.GetStatus())
	}
	if !errors.Is(last, council.ErrDeadlineExceeded) || !errors.Is(last, context.DeadlineExceeded) {
		t.Errorf("the wait ended with %v, want DEADLINE_EXCEEDED", last)
	}
	if !slices.Equal(got, []councilv1.DecisionStatus{pendingStatus}) {
		t.Errorf("states %v, want [PENDING]", got)
	}
	if time.Since(started) > 8*time.Second {
		t.Errorf("the wait took %v", time.Since(started))
	}
}

func TestAwaitDecisionCancelEndsQuietly(t *testing.T) {
	e := lifecycle(t)
	d := review(t, e.agentC, needsPeople(suggestionID(t, "s")))
	ctx, cancel := context.WithCancel(bounded(t, 30*time.Second))
	defer cancel()
	seen := newStates()
	done := make(chan error, 1)
	go func() {
		for state, err := range e.agentC.AwaitDecision(ctx, d.GetId()).All() {
			if err != nil {
				done <- err
				return
			}
			seen.push(state)
		}
		done <- nil
	}()
	seen.until(t, pendingWith(0), "the current state")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("a cancelled wait ended with %v, want no error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled wait did not end")
	}
	if n := len(seen.snapshot()); n != 1 {
		t.Errorf("%d states, want 1", n)
	}
}

func TestAwaitDecisionOfAnUnknownDecisionIsNotFound(t *testing.T) {
	e := lifecycle(t)
	for _, err := range e.agentC.AwaitDecision(bounded(t, 10*time.Second), "dec-does-not-exist").All() {
		if !errors.Is(err, council.ErrNotFound) {
			t.Errorf("got %v, want NOT_FOUND", err)
		}
		return
	}
	t.Error("the iteration yielded nothing")
}

func TestGuardAllowsAnAutoApprovedChangeAtOnce(t *testing.T) {
	e := lifecycle(t)
	var votes []*councilv1.Vote
	seen := newStates()
	v, err := e.agentC.Guard(bounded(t, 15*time.Second), newSuggestion(suggestionID(t, "auto")),
		council.OnVote(func(v *councilv1.Vote) { votes = append(votes, v) }),
		council.OnDecision(seen.push))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Allowed || v.Outcome != council.GuardApproved || v.TimedOut || v.Status != approvedStatus ||
		v.DecisionType != councilv1.DecisionType_DECISION_TYPE_AUTO_APPROVE {
		t.Fatalf("verdict %+v, want allowed: auto-approved", v)
	}
	if !strings.HasPrefix(v.Reason, "auto-approved by the council: ") {
		t.Errorf("reason %q", v.Reason)
	}
	if len(v.ApprovedBy) != 0 || !slices.Equal(v.Conditions, v.Decision.GetConditions()) {
		t.Errorf("approved by %q, conditions %q", v.ApprovedBy, v.Conditions)
	}
	if len(votes) != 5 || len(seen.snapshot()) != 1 || seen.snapshot()[0].GetId() != v.DecisionID {
		t.Errorf("%d votes and %d decisions reported, want 5 and the one decision", len(votes), len(seen.snapshot()))
	}
}

func TestGuardWaitsForPeopleAndAllowsAfterBothApprovals(t *testing.T) {
	e := lifecycle(t)
	seen := newStates()
	var mu sync.Mutex
	votes := 0
	done := guardInBackground(bounded(t, 30*time.Second), e.agentC, needsPeople(suggestionID(t, "s")),
		council.OnVote(func(*councilv1.Vote) { mu.Lock(); votes++; mu.Unlock() }),
		council.OnDecision(seen.push))
	// The approvers act on what the agent shows them: the pending decision's id.
	shown := seen.until(t, pendingWith(0), "pending (the council's decision)")
	mu.Lock()
	if votes != 5 {
		t.Errorf("%d votes before the decision, want 5", votes)
	}
	mu.Unlock()
	resolve(t, e.aliceC, shown.GetId(), council.Approve, "ship it")
	seen.until(t, pendingWith(1), "alice's approval")
	resolve(t, e.bobC, shown.GetId(), council.Approve, "")
	v, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Allowed || v.Outcome != council.GuardApproved || v.DecisionType != councilv1.DecisionType_DECISION_TYPE_HUMAN_APPROVE {
		t.Fatalf("verdict %+v, want allowed after the approvals", v)
	}
	if !slices.Equal(v.ApprovedBy, []string{e.alice, e.bob}) || len(v.RejectedBy) != 0 {
		t.Errorf("approved by %q, rejected by %q", v.ApprovedBy, v.RejectedBy)
	}
	if want := fmt.Sprintf(`approved by %s ("ship it"), %s (2 of 2 approvals)`, e.alice, e.bob); v.Reason != want {
		t.Errorf("reason %q, want %q", v.Reason, want)
	}
	want := []string{"DECISION_STATUS_PENDING/0", "DECISION_STATUS_PENDING/1", "DECISION_STATUS_APPROVED/2"}
	if got := seen.shape(); !slices.Equal(got, want) {
		t.Errorf("OnDecision saw %v, want %v", got, want)
	}
}

func TestGuardDoesNotAllowWhatAnApproverRejected(t *testing.T) {
	e := lifecycle(t)
	seen := newStates()
	done := guardInBackground(bounded(t, 30*time.Second), e.agentC, needsPeople(suggestionID(t, "s")), council.OnDecision(seen.push))
	shown := seen.until(t, pendingWith(0), "pending")
	resolve(t, e.aliceC, shown.GetId(), council.Reject, "not during the sale")
	v, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || v.Outcome != council.GuardRejected || v.TimedOut || v.Status != rejectedStatus {
		t.Fatalf("verdict %+v, want rejected", v)
	}
	if !slices.Equal(v.RejectedBy, []string{e.alice}) || v.Verdicts[0].GetComment() != "not during the sale" {
		t.Errorf("rejected by %q with %v", v.RejectedBy, v.Verdicts)
	}
	if want := fmt.Sprintf(`rejected by %s: "not during the sale"`, e.alice); v.Reason != want {
		t.Errorf("reason %q, want %q", v.Reason, want)
	}
}

func TestGuardDoesNotAllowWhatTheCouncilRejected(t *testing.T) {
	e := lifecycle(t)
	v, err := e.agentC.Guard(bounded(t, 15*time.Second), vetoed(suggestionID(t, "veto")))
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || v.Outcome != council.GuardRejected || v.DecisionType != councilv1.DecisionType_DECISION_TYPE_REJECT ||
		!strings.HasPrefix(v.Reason, "rejected by the council: Vetoed by safety: bypasses_authentication") {
		t.Errorf("verdict %+v, want rejected by the council", v)
	}
}

func TestGuardDoesNotAllowAnExpiredDecision(t *testing.T) {
	e := lifecycle(t)
	seen := newStates()
	v, err := e.agentC.Guard(bounded(t, 30*time.Second), deferred(suggestionID(t, "defer")), council.OnDecision(seen.push))
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || v.Outcome != council.GuardExpired || v.TimedOut || v.Status != expiredStatus ||
		v.DecisionType != councilv1.DecisionType_DECISION_TYPE_DEFER {
		t.Fatalf("verdict %+v, want expired", v)
	}
	if !regexp.MustCompile(`^expired at \S+ with 0 of 1 approvals$`).MatchString(v.Reason) {
		t.Errorf("reason %q", v.Reason)
	}
	var got []councilv1.DecisionStatus
	for _, d := range seen.snapshot() {
		got = append(got, d.GetStatus())
	}
	if !reflect.DeepEqual(got, []councilv1.DecisionStatus{pendingStatus, expiredStatus}) {
		t.Errorf("OnDecision saw %v, want [PENDING EXPIRED]", got)
	}
}

func TestGuardDeadlineSaysTimedOutNotRejected(t *testing.T) {
	e := lifecycle(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	started := time.Now()
	v, err := e.agentC.Guard(ctx, needsPeople(suggestionID(t, "s")))
	if err != nil {
		t.Fatalf("Guard at its deadline: %v, want a timed-out verdict and no error", err)
	}
	if v.Allowed || v.Outcome != council.GuardTimedOut || !v.TimedOut || v.Status != pendingStatus || len(v.RejectedBy) != 0 {
		t.Fatalf("verdict %+v, want timed out and pending", v)
	}
	re := regexp.MustCompile(`^timed out after \d+ ms: decision ` + regexp.QuoteMeta(v.DecisionID) +
		` \(DECISION_TYPE_HUMAN_APPROVE\) is still pending \(0 of 2 approvals`)
	if !re.MatchString(v.Reason) {
		t.Errorf("reason %q", v.Reason)
	}
	if time.Since(started) > 10*time.Second {
		t.Errorf("Guard took %v", time.Since(started))
	}
	stored, err := e.agentC.GetDecision(bounded(t, 10*time.Second), v.DecisionID)
	if err != nil || stored.GetStatus() != pendingStatus {
		t.Errorf("the decision is %v (%v), want still pending", stored.GetStatus(), err)
	}
}

func TestGuardCancelledWhileWaitingReturnsCanceled(t *testing.T) {
	e := lifecycle(t)
	ctx, cancel := context.WithCancel(bounded(t, 30*time.Second))
	defer cancel()
	seen := newStates()
	done := guardInBackground(ctx, e.agentC, needsPeople(suggestionID(t, "s")), council.OnDecision(seen.push))
	seen.until(t, pendingWith(0), "pending")
	cancel()
	v, err := wait(t, done)
	if !errors.Is(err, council.ErrCanceled) || v != nil {
		t.Errorf("Guard cancelled: %+v, %v; want no verdict and CANCELED", v, err)
	}
}

func TestGuardOfASupersededDecisionIsNotAllowed(t *testing.T) {
	e := lifecycle(t)
	seen := newStates()
	done := guardInBackground(bounded(t, 30*time.Second), e.agentC, needsPeople(suggestionID(t, "first")), council.OnDecision(seen.push))
	shown := seen.until(t, pendingWith(0), "pending")
	followUp := review(t, e.agentC, needsPeople(suggestionID(t, "again")), council.WithSupersedes(shown.GetId()))
	if followUp.GetSupersedes() != shown.GetId() {
		t.Errorf("the follow-up supersedes %q, want %q", followUp.GetSupersedes(), shown.GetId())
	}
	v, err := wait(t, done)
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || v.Outcome != council.GuardSuperseded || v.Reason != "superseded by "+followUp.GetId() {
		t.Errorf("verdict %+v, want superseded by %s", v, followUp.GetId())
	}
}

func TestGuardRefusesADryRun(t *testing.T) {
	c := dial(t)
	if _, err := c.Guard(bounded(t, 5*time.Second), newSuggestion(suggestionID(t, "dry")), council.DryRun()); err == nil || !strings.Contains(err.Error(), "DryRun") {
		t.Errorf("Guard with DryRun: %v, want an error naming DryRun", err)
	}
}
