package council_test

// ServeReviews (SPEC §11), against the external-reviewer server that the repository's
// test/clients.test.ts starts for this suite, given in the environment:
//
//   - COUNCIL_TEST_EXTERNAL_ADDR: a plaintext server whose policy makes safety external (3 s, on
//     failure needs_more_info) and quality external (3 s, on failure reject), with an auth file;
//   - COUNCIL_TEST_REVIEWER_TOKEN: a token of principal COUNCIL_TEST_REVIEWER_PRINCIPAL (role
//     reviewer), which serves the roles;
//   - COUNCIL_TEST_AGENT_TOKEN: a token of a principal with the role agent, which submits reviews.
//
// No other suite serves roles on that server, and each test here waits, when it ends, until the
// server no longer counts its reviewer as connected, so that no test's task goes to another's.
// A stand-in server shows the concurrency bound and the reconnection after the server ends the
// stream OK.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

const (
	safety  = councilv1.ReviewerRole_REVIEWER_ROLE_SAFETY
	quality = councilv1.ReviewerRole_REVIEWER_ROLE_QUALITY
)

type externalEnv struct {
	addr, reviewerToken, reviewerPrincipal, agentToken string
}

// external reads the environment; it fails the test (it does not skip) when something is missing.
func external(t *testing.T) externalEnv {
	t.Helper()
	names := []string{"COUNCIL_TEST_EXTERNAL_ADDR", "COUNCIL_TEST_REVIEWER_TOKEN", "COUNCIL_TEST_REVIEWER_PRINCIPAL", "COUNCIL_TEST_AGENT_TOKEN"}
	var missing []string
	for _, n := range names {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("set %s: these tests need the external-reviewer server that the repository's "+
			"test/clients.test.ts starts (npx mocha test/clients.test.ts -g Go)", strings.Join(missing, ", "))
	}
	return externalEnv{
		addr:              os.Getenv("COUNCIL_TEST_EXTERNAL_ADDR"),
		reviewerToken:     os.Getenv("COUNCIL_TEST_REVIEWER_TOKEN"),
		reviewerPrincipal: os.Getenv("COUNCIL_TEST_REVIEWER_PRINCIPAL"),
		agentToken:        os.Getenv("COUNCIL_TEST_AGENT_TOKEN"),
	}
}

func (e externalEnv) agent(t *testing.T) *council.Client {
	return dialAt(t, e.addr, council.WithToken(e.agentToken))
}

func (e externalEnv) reviewer(t *testing.T) *council.Client {
	return dialAt(t, e.addr, council.WithToken(e.reviewerToken))
}

// logRecords is a slog.Handler that keeps every record, for tests to wait on what ServeReviews
// logs.
type logRecords struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on each record
}

func newLogRecords() (*slog.Logger, *logRecords) {
	l := &logRecords{changed: make(chan struct{})}
	return slog.New(l), l
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{l, attrs}
}
func (l *logRecords) WithGroup(string) slog.Handler { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	return l.add(r, nil)
}

func (l *logRecords) add(r slog.Record, attrs []slog.Attr) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

type attrHandler struct {
	*logRecords
	attrs []slog.Attr
}

func (h *attrHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{h.logRecords, append(h.attrs[:len(h.attrs):len(h.attrs)], attrs...)}
}
func (h *attrHandler) Handle(_ context.Context, r slog.Record) error {
	return h.add(r, h.attrs)
}

// waitFor returns the first record that contains every one of parts, waiting for it at most d.
func (l *logRecords) waitFor(t *testing.T, d time.Duration, parts ...string) string {
	t.Helper()
	timeout := time.After(d)
	for {
		l.mu.Lock()
		changed := l.changed
		for _, line := range l.lines {
			if containsAll(line, parts) {
				l.mu.Unlock()
				return line
			}
		}
		all := strings.Join(l.lines, "\n")
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no log record with %q within %v; logged:\n%s", parts, d, all)
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// serving is a ServeReviews running in the background.
type serving struct {
	connected chan struct{} // one element per OnConnected call
	done      chan error    // ServeReviews' return value
	cancel    context.CancelFunc
}

// serve runs ServeReviews in the background with o (its OnConnected is replaced) and waits until
// the server accepted the stream. When the test ends it cancels it, checks that it returned nil,
// and waits until the server counts no reviewer of o's roles as connected.
func serve(t *testing.T, e externalEnv, c *council.Client, o council.ReviewerOptions) *serving {
	t.Helper()
	s := start(t, c, o)
	select {
	case <-s.connected:
	case err := <-s.done:
		t.Fatalf("ServeReviews returned %v before it was connected", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ServeReviews not connected within 10 s")
	}
	agent := e.agent(t)
	t.Cleanup(func() {
		s.cancel()
		if err := within(t, s.done, 10*time.Second, "ServeReviews returning once cancelled"); err != nil {
			t.Errorf("ServeReviews returned %v once cancelled, want nil", err)
		}
		eventually(t, 10*time.Second, "the server no longer counting the reviewer as connected", func() bool {
			return connected(t, agent, o.Roles...) == 0
		})
	})
	return s
}

// start runs ServeReviews in the background with o (its OnConnected is replaced), cancelled at
// the end of the test at the latest.
func start(t *testing.T, c *council.Client, o council.ReviewerOptions) *serving {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &serving{connected: make(chan struct{}, 100), done: make(chan error, 1), cancel: cancel}
	o.OnConnected = func() { s.connected <- struct{}{} }
	go func() { s.done <- c.ServeReviews(ctx, o) }()
	return s
}

// connected is how many reviewers of the given roles the server counts as connected, in all.
func connected(t *testing.T, c *council.Client, roles ...councilv1.ReviewerRole) int {
	t.Helper()
	res, err := c.Reviewers(bounded(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res.GetReviewers() {
		for _, role := range roles {
			if r.GetRole() == role {
				n += int(r.GetConnected())
			}
		}
	}
	return n
}

// voteOf returns the decision's vote of role.
func voteOf(t *testing.T, d *councilv1.Decision, role councilv1.ReviewerRole) *councilv1.Vote {
	t.Helper()
	for _, v := range d.GetVotes() {
		if v.GetReviewerRole() == role {
			return v
		}
	}
	t.Fatalf("decision %s has no vote of %v: %v", d.GetId(), role, d.GetVotes())
	return nil
}

func approve(reasoning string) *councilv1.TaskVote {
	return &councilv1.TaskVote{Vote: councilv1.VoteType_VOTE_TYPE_APPROVE, Reasoning: reasoning, Confidence: 0.9}
}

const reviewerDiff = "--- a/src/http.ts\n+++ b/src/http.ts\n@@ -1 +1 @@\n-fetch(url)\n+retry(() => fetch(url))\n"

func TestServeReviewsVotesAreCountedAsCastByTheReviewer(t *testing.T) {
	e := external(t)
	type seen struct {
		task     *councilv1.ReviewTask
		deadline time.Time
		ok       bool
	}
	tasks := make(chan seen, 10)
	serve(t, e, e.reviewer(t), council.ReviewerOptions{
		Roles: []councilv1.ReviewerRole{safety, quality},
		Handler: func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			deadline, ok := ctx.Deadline()
			tasks <- seen{task, deadline, ok}
			return &councilv1.TaskVote{
				TaskId:     "ignored: ServeReviews sets the task id",
				Vote:       councilv1.VoteType_VOTE_TYPE_APPROVE,
				Reasoning:  "read the diff as " + task.GetRole().String(),
				Concerns:   []string{"watch the retry budget"},
				Conditions: []string{"cap retries at 3"},
				Confidence: 0.75,
			}, nil
		},
	})
	agent := e.agent(t)
	if n := connected(t, agent, safety); n != 1 {
		t.Errorf("the server counts %d safety reviewers connected, want 1", n)
	}

	s := newSuggestion(suggestionID(t, "counted"))
	s.Diff = reviewerDiff
	started := time.Now()
	d, err := agent.Decide(bounded(t, 15*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(started); elapsed > 2500*time.Millisecond {
		t.Errorf("the review took %v: it waited for a timeout instead of the reviewer's votes", elapsed)
	}
	for _, role := range []councilv1.ReviewerRole{safety, quality} {
		v := voteOf(t, d, role)
		if v.GetCastBy() != e.reviewerPrincipal || v.GetVote() != councilv1.VoteType_VOTE_TYPE_APPROVE ||
			v.GetReasoning() != "read the diff as "+role.String() || v.GetConfidence() != 0.75 ||
			len(v.GetConcerns()) != 1 || len(v.GetConditions()) != 1 || v.GetConditions()[0] != "cap retries at 3" {
			t.Errorf("%v vote %v, want the reviewer's approval cast by %s", role, v, e.reviewerPrincipal)
		}
	}
	if v := voteOf(t, d, councilv1.ReviewerRole_REVIEWER_ROLE_PERFORMANCE); v.GetCastBy() != "rules" {
		t.Errorf("performance vote cast by %q, want rules", v.GetCastBy())
	}

	for range 2 {
		got := within(t, tasks, time.Second, "the handler's tasks")
		task := got.task
		if task.GetDecisionId() != d.GetId() || task.GetSuggestion().GetDiff() != reviewerDiff ||
			task.GetSuggestion().GetId() != s.GetId() || task.GetDryRun() || task.GetTaskId() == "" {
			t.Errorf("task %v, want one for decision %s with the suggestion and its diff", task, d.GetId())
		}
		if !got.ok || !got.deadline.Equal(task.GetDeadline().AsTime()) {
			t.Errorf("the handler's context has deadline %v (%v), want the task's %v", got.deadline, got.ok, task.GetDeadline().AsTime())
		}
		if left := time.Until(task.GetDeadline().AsTime()) + time.Since(started); left < 2*time.Second || left > 4*time.Second {
			t.Errorf("task deadline %v after the review started, want about the role's 3 s", left)
		}
	}
}

func TestServeReviewsVetoRejectsTheChange(t *testing.T) {
	e := external(t)
	serve(t, e, e.reviewer(t), council.ReviewerOptions{
		Roles: []councilv1.ReviewerRole{safety, quality},
		Handler: func(_ context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			if task.GetRole() == safety {
				return &councilv1.TaskVote{
					Vote:       councilv1.VoteType_VOTE_TYPE_REJECT,
					Reasoning:  "the diff adds an AWS key",
					Confidence: 1,
					Veto:       "credential_in_diff",
				}, nil
			}
			return approve("fine"), nil
		},
	})
	s := newSuggestion(suggestionID(t, "veto"))
	s.Diff = "--- a/config.ts\n+++ b/config.ts\n@@ -1 +1 @@\n-const key = ''\n+const key = 'AKIAABCDEFGHIJKLMNOP'\n"
	d, err := e.agent(t).Decide(bounded(t, 15*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	if d.GetDecision() != councilv1.DecisionType_DECISION_TYPE_REJECT || d.GetStatus() != councilv1.DecisionStatus_DECISION_STATUS_REJECTED {
		t.Errorf("decision %v %v, want REJECT, REJECTED", d.GetDecision(), d.GetStatus())
	}
	v := voteOf(t, d, safety)
	if v.GetVeto() != "credential_in_diff" || v.GetCastBy() != e.reviewerPrincipal || v.GetVote() != councilv1.VoteType_VOTE_TYPE_REJECT {
		t.Errorf("safety vote %v, want the reviewer's veto credential_in_diff", v)
	}
	if v := voteOf(t, d, quality); v.GetCastBy() != e.reviewerPrincipal || v.GetVeto() != "" {
		t.Errorf("quality vote %v, want the reviewer's approval (the veto is safety's alone)", v)
	}
}

func TestServeReviewsHandlerErrorOrPanicSendsNoVoteAndTheFailurePolicyVotes(t *testing.T) {
	e := external(t)
	logger, logs := newLogRecords()
	s := serve(t, e, e.reviewer(t), council.ReviewerOptions{
		Roles:  []councilv1.ReviewerRole{safety, quality},
		Logger: logger,
		Handler: func(_ context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			if task.GetRole() == safety {
				return nil, errors.New("scanner crashed")
			}
			panic("quality handler bug")
		},
	})
	d, err := e.agent(t).Decide(bounded(t, 15*time.Second), newSuggestion(suggestionID(t, "error")))
	if err != nil {
		t.Fatal(err)
	}
	if v := voteOf(t, d, safety); v.GetCastBy() != "fallback:needs_more_info" || v.GetVote() != councilv1.VoteType_VOTE_TYPE_NEEDS_MORE_INFO {
		t.Errorf("safety vote %v, want NEEDS_MORE_INFO cast by fallback:needs_more_info", v)
	}
	if v := voteOf(t, d, quality); v.GetCastBy() != "fallback:reject" || v.GetVeto() != "no_external_vote" {
		t.Errorf("quality vote %v, want the veto no_external_vote cast by fallback:reject", v)
	}
	logs.waitFor(t, time.Second, "ERROR", "review handler failed", "scanner crashed", "decision_id="+d.GetId(), "role=REVIEWER_ROLE_SAFETY")
	logs.waitFor(t, time.Second, "ERROR", "review handler failed", "panicked: quality handler bug", "role=REVIEWER_ROLE_QUALITY")
	select {
	case err := <-s.done:
		t.Fatalf("ServeReviews returned %v after a handler failed, want it serving on", err)
	default:
	}
}

func TestServeReviewsGivesTheHandlerTheTaskDeadlineAndDropsALateVote(t *testing.T) {
	e := external(t)
	logger, logs := newLogRecords()
	serve(t, e, e.reviewer(t), council.ReviewerOptions{
		Roles:  []councilv1.ReviewerRole{safety, quality},
		Logger: logger,
		Handler: func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			if task.GetRole() == safety {
				<-ctx.Done() // the task's deadline: the vote is late
				return approve("too late"), nil
			}
			return approve("in time"), nil
		},
	})
	d, err := e.agent(t).Decide(bounded(t, 15*time.Second), newSuggestion(suggestionID(t, "late")))
	if err != nil {
		t.Fatal(err)
	}
	if v := voteOf(t, d, safety); v.GetCastBy() != "fallback:needs_more_info" || !strings.Contains(v.GetReasoning(), "timed out") {
		t.Errorf("safety vote %v, want the timed-out fallback", v)
	}
	if v := voteOf(t, d, quality); v.GetCastBy() != e.reviewerPrincipal {
		t.Errorf("quality vote %v, want the reviewer's", v)
	}
	logs.waitFor(t, 2*time.Second, "WARN", "vote dropped", "after the task's deadline", "role=REVIEWER_ROLE_SAFETY", "decision_id="+d.GetId())
}

func TestServeReviewsReconnectsAfterTheConnectionIsCut(t *testing.T) {
	e := external(t)
	proxy := startProxy(t, e.addr, nil)
	logger, logs := newLogRecords()
	s := serve(t, e, dialAt(t, proxy.addr(), council.WithToken(e.reviewerToken)), council.ReviewerOptions{
		Roles:  []councilv1.ReviewerRole{safety, quality},
		Logger: logger,
		Handler: func(_ context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			return approve("after the cut"), nil
		},
	})
	proxy.cut()
	within(t, s.connected, 10*time.Second, "ServeReviews connected again after the cut")
	logs.waitFor(t, time.Second, "WARN", "reconnecting")

	agent := e.agent(t)
	eventually(t, 10*time.Second, "the server dropping the cut stream", func() bool { return connected(t, agent, safety) == 1 })
	d, err := agent.Decide(bounded(t, 15*time.Second), newSuggestion(suggestionID(t, "reconnected")))
	if err != nil {
		t.Fatal(err)
	}
	if v := voteOf(t, d, safety); v.GetCastBy() != e.reviewerPrincipal || v.GetReasoning() != "after the cut" {
		t.Errorf("safety vote %v, want the reconnected reviewer's", v)
	}
}

func TestServeReviewsEndsCleanlyWhenCancelledAndWaitsForItsHandlers(t *testing.T) {
	e := external(t)
	entered := make(chan struct{})
	var handlerReturned atomic.Bool
	var handlerErr error
	c, agent := e.reviewer(t), e.agent(t)
	logger, logs := newLogRecords()
	s := start(t, c, council.ReviewerOptions{
		Roles:  []councilv1.ReviewerRole{safety},
		Logger: logger,
		Handler: func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			close(entered)
			<-ctx.Done()
			handlerErr = ctx.Err()
			// Some clean-up that takes a round trip, so that a ServeReviews that did not wait
			// for its handlers would return first.
			if _, err := agent.Reviewers(context.Background()); err != nil {
				t.Error(err)
			}
			handlerReturned.Store(true)
			return nil, ctx.Err()
		},
	})
	within(t, s.connected, 10*time.Second, "ServeReviews connected")

	decided := make(chan *councilv1.Decision, 1)
	go func() {
		d, err := agent.Decide(bounded(t, 15*time.Second), newSuggestion(suggestionID(t, "cancelled")))
		if err != nil {
			t.Error(err)
		}
		decided <- d
	}()
	within(t, entered, 10*time.Second, "the handler getting the task")

	started := time.Now()
	s.cancel()
	if err := within(t, s.done, 5*time.Second, "ServeReviews returning once cancelled"); err != nil {
		t.Errorf("ServeReviews returned %v once cancelled, want nil", err)
	}
	if !handlerReturned.Load() || !errors.Is(handlerErr, context.Canceled) {
		t.Errorf("ServeReviews returned before its handler (returned %v, context error %v)", handlerReturned.Load(), handlerErr)
	}
	// Stopping is no failure: the handler's context error is not logged as one.
	if line := logs.waitFor(t, time.Second, "no vote sent", "the reviewer stream ended"); !strings.HasPrefix(line, "DEBUG") {
		t.Errorf("logged %q when stopping, want it at DEBUG", line)
	}
	// The server sees the reviewer go: the task falls to the failure policy at once, not at its timeout.
	d := within(t, decided, 10*time.Second, "the review")
	if v := voteOf(t, d, safety); v.GetCastBy() != "fallback:needs_more_info" {
		t.Errorf("safety vote %v, want the fallback", v)
	}
	if elapsed := time.Since(started); elapsed > 2500*time.Millisecond {
		t.Errorf("the review ended %v after the reviewer stopped: it waited for the timeout", elapsed)
	}
	eventually(t, 10*time.Second, "the server no longer counting the reviewer", func() bool { return connected(t, agent, safety) == 0 })

	// A second call on the same client serves again.
	serve(t, e, c, council.ReviewerOptions{
		Roles: []councilv1.ReviewerRole{safety},
		Handler: func(context.Context, *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			return approve("again"), nil
		},
	})
}

func TestServeReviewsReturnsConfigurationErrorsWithoutRetrying(t *testing.T) {
	e := external(t)
	var streams atomic.Int32
	handler := func(context.Context, *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
		return approve("never"), nil
	}
	for _, tc := range []struct {
		name  string
		token string
		roles []councilv1.ReviewerRole
		want  codes.Code
		is    error
	}{
		{"a role that is not external", e.reviewerToken, []councilv1.ReviewerRole{safety, councilv1.ReviewerRole_REVIEWER_ROLE_PERFORMANCE}, codes.FailedPrecondition, council.ErrFailedPrecondition},
		{"an unspecified role", e.reviewerToken, []councilv1.ReviewerRole{councilv1.ReviewerRole_REVIEWER_ROLE_UNSPECIFIED}, codes.InvalidArgument, council.ErrInvalidArgument},
		{"a principal without the role reviewer", e.agentToken, []councilv1.ReviewerRole{safety}, codes.PermissionDenied, council.ErrPermissionDenied},
		{"a wrong token", "not-a-token", []councilv1.ReviewerRole{safety}, codes.Unauthenticated, council.ErrUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := streams.Load()
			c := dialAt(t, e.addr, council.WithToken(tc.token), streamCounter(&streams))
			s := start(t, c, council.ReviewerOptions{Roles: tc.roles, Handler: handler})
			err := within(t, s.done, 10*time.Second, "ServeReviews returning")
			var cerr *council.Error
			if !errors.As(err, &cerr) || cerr.Code != tc.want || !errors.Is(err, tc.is) {
				t.Errorf("ServeReviews returned %v, want a %v *council.Error", err, tc.want)
			}
			if n := streams.Load() - before; n != 1 {
				t.Errorf("%d streams opened, want 1 (no retry)", n)
			}
			if len(s.connected) != 0 {
				t.Error("OnConnected was called for a refused stream")
			}
		})
	}

	// A server without ServeReviews.
	before := streams.Load()
	unimplemented := standIn(t, func(method string, _ grpc.ServerStream) error { return status.Error(codes.Unimplemented, method) })
	s := start(t, dialAt(t, unimplemented, streamCounter(&streams)), council.ReviewerOptions{Roles: []councilv1.ReviewerRole{safety}, Handler: handler})
	if err := within(t, s.done, 10*time.Second, "ServeReviews returning"); council.Code(err) != codes.Unimplemented {
		t.Errorf("ServeReviews against a server without it returned %v, want UNIMPLEMENTED", err)
	}
	if n := streams.Load() - before; n != 1 {
		t.Errorf("%d streams opened, want 1 (no retry)", n)
	}

	c := e.reviewer(t)
	for _, o := range []council.ReviewerOptions{{Handler: handler}, {Roles: []councilv1.ReviewerRole{safety}}} {
		if err := c.ServeReviews(bounded(t, 5*time.Second), o); err == nil {
			t.Errorf("ServeReviews(%+v) returned nil, want an error", o)
		}
	}
}

// A stand-in server: the tasks of one stream are handled concurrently, never more than
// Concurrency at once, each vote goes back with its task id, a vote that comes after its task's
// deadline is not sent, and a stream the server ends OK is opened again.
//
// The first two tasks (of five, Concurrency 2) have a deadline 1.5 s away and their handlers
// return only then, so while they run there is no free slot: the other three are handled only
// after that, and votes come back for those three alone. Were the bound not kept, the third
// handler would start while the first two are still blocked, and at most 2 at once would fail.
func TestServeReviewsHandlesTasksConcurrentlyUpToItsLimitAndReconnectsAfterAnOKEnd(t *testing.T) {
	const tasks, limit, blocked = 5, 2, 1500 * time.Millisecond
	votes := make(chan *councilv1.TaskVote, tasks)
	var calls atomic.Int32
	var sent time.Time
	addr := standIn(t, func(method string, stream grpc.ServerStream) error {
		if method != councilv1.CouncilService_ServeReviews_FullMethodName {
			return status.Error(codes.Unimplemented, method)
		}
		var hello councilv1.ServeReviewsRequest
		if err := stream.RecvMsg(&hello); err != nil {
			return err
		}
		if got := hello.GetHello().GetRoles(); len(got) != 1 || got[0] != safety {
			return status.Errorf(codes.InvalidArgument, "hello %v", &hello)
		}
		if err := stream.SendHeader(metadata.MD{}); err != nil {
			return err
		}
		if calls.Add(1) > 1 {
			<-stream.Context().Done() // the second stream: serve until the client goes
			return nil
		}
		sent = time.Now()
		for i := range tasks {
			deadline := sent.Add(time.Minute)
			if i < limit {
				deadline = sent.Add(blocked)
			}
			task := &councilv1.ReviewTask{
				TaskId:     fmt.Sprintf("task-%d", i),
				DecisionId: "dec-1",
				Role:       safety,
				Deadline:   timestamppb.New(deadline),
				Suggestion: newSuggestion("s-1"),
			}
			if err := stream.SendMsg(&councilv1.ServeReviewsResponse{Task: task}); err != nil {
				return err
			}
		}
		for range tasks - limit {
			var req councilv1.ServeReviewsRequest
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			votes <- req.GetVote()
		}
		return nil // ends the stream OK: the reviewer connects again
	})

	var mu sync.Mutex
	inFlight, most := 0, 0
	logger, logs := newLogRecords()
	s := start(t, dialAt(t, addr), council.ReviewerOptions{
		Roles:       []councilv1.ReviewerRole{safety},
		Concurrency: limit,
		Logger:      logger,
		Handler: func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			mu.Unlock()
			defer func() {
				mu.Lock()
				inFlight--
				mu.Unlock()
			}()
			if task.GetTaskId() == "task-0" || task.GetTaskId() == "task-1" {
				<-ctx.Done() // the task's deadline
				return approve("late"), nil
			}
			return approve("vote on " + task.GetTaskId()), nil
		},
	})
	within(t, s.connected, 10*time.Second, "the first stream accepted")
	got := map[string]bool{}
	for range tasks - limit {
		v := within(t, votes, 10*time.Second, "the votes")
		if v.GetReasoning() != "vote on "+v.GetTaskId() || v.GetVote() != councilv1.VoteType_VOTE_TYPE_APPROVE || v.GetConfidence() != 0.9 {
			t.Errorf("vote %v does not answer its task", v)
		}
		got[v.GetTaskId()] = true
	}
	if elapsed := time.Since(sent); elapsed < blocked {
		t.Errorf("the first vote came back %v after the tasks were sent, before the first two tasks' deadline %v", elapsed, blocked)
	}
	if !got["task-2"] || !got["task-3"] || !got["task-4"] {
		t.Errorf("votes for %v, want one for each of task-2, task-3 and task-4", got)
	}
	mu.Lock()
	if most != limit {
		t.Errorf("at most %d handlers ran at once, want %d", most, limit)
	}
	mu.Unlock()
	// The first of the two blocked handlers to return frees the slot the others need, so its late
	// vote was dropped before they ran (the second may see the stream end first).
	if line := logs.waitFor(t, time.Second, "vote dropped"); !strings.Contains(line, "task_id=task-0") && !strings.Contains(line, "task_id=task-1") {
		t.Errorf("dropped %q, want the late vote of task-0 or task-1", line)
	}
	within(t, s.connected, 10*time.Second, "the stream opened again after the server ended it OK")
	logs.waitFor(t, time.Second, "reconnecting", "the server ended the reviewer stream")
	s.cancel()
	if err := within(t, s.done, 5*time.Second, "ServeReviews returning once cancelled"); err != nil {
		t.Errorf("ServeReviews returned %v once cancelled, want nil", err)
	}
}

// A stand-in server that accepts the stream and sends nothing: ctx's deadline ends ServeReviews
// with DEADLINE_EXCEEDED, and closing the Client ends it with CANCELED, without reconnecting.
func TestServeReviewsEndsWithItsDeadlineOrWhenTheClientIsClosed(t *testing.T) {
	var streams atomic.Int32
	addr := standIn(t, func(method string, stream grpc.ServerStream) error {
		streams.Add(1)
		if err := stream.RecvMsg(&councilv1.ServeReviewsRequest{}); err != nil {
			return err
		}
		if err := stream.SendHeader(metadata.MD{}); err != nil {
			return err
		}
		<-stream.Context().Done()
		return nil
	})
	o := council.ReviewerOptions{
		Roles:   []councilv1.ReviewerRole{safety},
		Handler: func(context.Context, *councilv1.ReviewTask) (*councilv1.TaskVote, error) { return nil, nil },
	}

	c := dialAt(t, addr)
	var once atomic.Bool
	o.OnConnected = func() { once.Store(true) }
	err := c.ServeReviews(bounded(t, 500*time.Millisecond), o)
	if !errors.Is(err, council.ErrDeadlineExceeded) || !once.Load() {
		t.Errorf("ServeReviews past its deadline returned %v (connected: %v), want DEADLINE_EXCEEDED after it was connected", err, once.Load())
	}

	c = dialAt(t, addr)
	s := start(t, c, o)
	within(t, s.connected, 10*time.Second, "ServeReviews connected")
	before := streams.Load()
	_ = c.Close()
	err = within(t, s.done, 5*time.Second, "ServeReviews returning once the client is closed")
	if !errors.Is(err, council.ErrCanceled) {
		t.Errorf("ServeReviews returned %v once the client was closed, want CANCELED", err)
	}
	if n := streams.Load(); n != before {
		t.Errorf("%d more streams opened after the client was closed, want none", n-before)
	}
}

// The example reviewer, built and run as its README section says: it vetoes a diff that deletes a
// test file, asks for more information about a file the suggestion does not declare, approves a
// diff that keeps to the declared files, and ends with status 0 on SIGINT.
func TestTheExampleReviewerReadsTheDiff(t *testing.T) {
	e := external(t)
	bin := filepath.Join(t.TempDir(), "reviewer")
	build := exec.Command("go", "build", "-o", bin, "./examples/reviewer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/reviewer: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, e.addr)
	cmd.Env = append(os.Environ(), "COUNCIL_TOKEN="+e.reviewerToken, "COUNCIL_ROLES=safety,quality",
		"COUNCIL_ADDR=", "COUNCIL_CA_FILE=", "COUNCIL_CERT_FILE=", "COUNCIL_KEY_FILE=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	var printed []string
	// next returns the next line the example prints.
	next := func(what string) string {
		t.Helper()
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: nothing printed within 15 s; printed:\n%s\nstderr:\n%s", what, strings.Join(printed, "\n"), stderr.String())
		}
		if !ok {
			t.Fatalf("%s: the example ended; printed:\n%s\nstderr:\n%s", what, strings.Join(printed, "\n"), stderr.String())
		}
		printed = append(printed, line)
		return line
	}
	if line := next("the example serving"); line != "serving safety,quality on "+e.addr {
		t.Fatalf("the example printed %q first, want that it serves", line)
	}

	agent := e.agent(t)
	review := func(suffix, diff string, files ...string) *councilv1.Decision {
		t.Helper()
		s := newSuggestion(suggestionID(t, suffix))
		s.Diff, s.FilesAffected = diff, files
		d, err := agent.Decide(bounded(t, 15*time.Second), s)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // one line per role served
			if line := next("the example's vote"); !strings.HasPrefix(line, d.GetId()+" ") {
				t.Errorf("the example printed %q, want a vote on %s", line, d.GetId())
			}
		}
		return d
	}

	deletes := "diff --git a/src/http_test.go b/src/http_test.go\ndeleted file mode 100644\n--- a/src/http_test.go\n+++ /dev/null\n@@ -1 +0,0 @@\n-package http\n"
	d := review("deletes", deletes, "src/http_test.go")
	if v := voteOf(t, d, safety); d.GetDecision() != councilv1.DecisionType_DECISION_TYPE_REJECT ||
		v.GetVeto() != "deletes_tests" || v.GetCastBy() != e.reviewerPrincipal || !strings.Contains(v.GetReasoning(), "src/http_test.go") {
		t.Errorf("decision %v with safety vote %v, want REJECT by the veto deletes_tests", d.GetDecision(), v)
	}

	undeclared := reviewerDiff + "--- a/src/auth.ts\n+++ b/src/auth.ts\n@@ -1 +1 @@\n-check()\n+// check()\n"
	d = review("undeclared", undeclared, "src/http.ts")
	if v := voteOf(t, d, safety); v.GetVote() != councilv1.VoteType_VOTE_TYPE_NEEDS_MORE_INFO ||
		!strings.Contains(v.GetReasoning(), "src/auth.ts") || strings.Contains(v.GetReasoning(), "src/http.ts") {
		t.Errorf("safety vote %v, want NEEDS_MORE_INFO about src/auth.ts only", v)
	}

	d = review("declared", reviewerDiff, "src/http.ts")
	if v := voteOf(t, d, safety); v.GetVote() != councilv1.VoteType_VOTE_TYPE_APPROVE || v.GetCastBy() != e.reviewerPrincipal {
		t.Errorf("safety vote %v, want the example's approval", v)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines { // to the end of its output
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the example ended with %v after SIGINT, want status 0; stderr:\n%s", err, stderr.String())
	}
}
