package council_test

// The review as an iterator: breaking out of the loop cancels the call, and the server sees it;
// cancelling the context or its deadline ends the loop with a typed error; Decide; ranging twice
// is one review. The cancellation tests run against the "held" server that test/clients.test.ts
// starts: its reviews pause before their second vote (COUNCIL_TEST_HELD_MS), so that a call is
// still open on the server when the client leaves it, and it serves its metrics
// (COUNCIL_TEST_HELD_METRICS_URL), where the server counts the calls it saw CANCELLED.

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

type heldEnv struct {
	addr       string
	metricsURL string
	hold       time.Duration
	c          *council.Client
}

func held(t *testing.T) *heldEnv {
	t.Helper()
	addr, url, ms := os.Getenv("COUNCIL_TEST_HELD_ADDR"), os.Getenv("COUNCIL_TEST_HELD_METRICS_URL"), os.Getenv("COUNCIL_TEST_HELD_MS")
	if addr == "" || url == "" || ms == "" {
		t.Fatal("set COUNCIL_TEST_HELD_ADDR, COUNCIL_TEST_HELD_METRICS_URL and COUNCIL_TEST_HELD_MS: these tests need the " +
			"held server that the repository's test/clients.test.ts starts (npx mocha test/clients.test.ts)")
	}
	n, err := strconv.Atoi(ms)
	if err != nil || n < 1000 {
		t.Fatalf("COUNCIL_TEST_HELD_MS=%q: want a number of ms, at least 1000", ms)
	}
	return &heldEnv{addr: addr, metricsURL: url, hold: time.Duration(n) * time.Millisecond, c: dialAt(t, addr)}
}

// cancelledReviews reads how many ReviewSuggestion calls the server saw CANCELLED.
func (e *heldEnv) cancelledReviews(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequestWithContext(bounded(t, 10*time.Second), http.MethodGet, e.metricsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "council_grpc_calls_total{") &&
			strings.Contains(line, `method="ReviewSuggestion"`) && strings.Contains(line, `code="CANCELLED"`) {
			n, err := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return n
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	return 0 // not counted yet
}

// eventually polls cond every 50 ms until it holds, for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBreakingOutOfAReviewCancelsTheCallAndTheServerSeesIt(t *testing.T) {
	e := held(t)
	before := e.cancelledReviews(t)
	ctx := bounded(t, 30*time.Second)

	started := time.Now()
	var first council.ReviewEvent
	events := 0
	for ev, err := range e.c.Review(ctx, newSuggestion(suggestionID(t, "s"))) {
		if err != nil {
			t.Fatal(err)
		}
		events++
		first = ev
		break // after the first vote: the server holds the second for COUNCIL_TEST_HELD_MS
	}
	if left := time.Since(started); left >= e.hold {
		t.Fatalf("the loop ended after %v, not at once: it waited for the held vote", left)
	}
	if events != 1 || first.Vote == nil || first.Vote.GetReviewerRole() != reviewerOrder[0] || !strings.HasPrefix(first.DecisionID, "dec-") {
		t.Fatalf("got %d events, the first %+v: want the safety vote with the decision id", events, first)
	}

	// The server counts the call CANCELLED once its review has finished (it runs to its decision
	// whoever is listening), a hold later.
	eventually(t, e.hold+15*time.Second, "the server counting the review CANCELLED", func() bool {
		return e.cancelledReviews(t) == before+1
	})
	// The review reached the store all the same, under the id its events carried.
	d, err := e.c.GetDecision(ctx, first.DecisionID)
	if err != nil || d.GetId() != first.DecisionID || len(d.GetVotes()) != 5 {
		t.Errorf("GetDecision(%s) after the cancelled call: %v, %v; want the stored decision", first.DecisionID, d, err)
	}
}

func TestCancellingAReviewsContextEndsItWithCanceled(t *testing.T) {
	e := held(t)
	before := e.cancelledReviews(t)
	ctx, cancel := context.WithCancel(bounded(t, 30*time.Second))
	defer cancel()

	started := time.Now()
	votes := 0
	var last error
	for ev, err := range e.c.Review(ctx, newSuggestion(suggestionID(t, "s"))) {
		if err != nil {
			last = err
			continue // the iterator yields nothing after its error
		}
		if ev.Decision != nil {
			t.Fatal("a decision after the caller cancelled")
		}
		votes++
		cancel()
	}
	if !errors.Is(last, council.ErrCanceled) || !errors.Is(last, context.Canceled) || council.Code(last).String() != "Canceled" {
		t.Errorf("the review ended with %v, want a CANCELED *Error", last)
	}
	if votes != 1 || time.Since(started) >= e.hold {
		t.Errorf("%d votes in %v, want the first one and an end at once", votes, time.Since(started))
	}
	eventually(t, e.hold+15*time.Second, "the server counting the review CANCELLED", func() bool {
		return e.cancelledReviews(t) == before+1
	})

	// Decide reports the same.
	// Cancelled a moment after it starts: within the hold before the second vote.
	ctx2, cancel2 := context.WithCancel(bounded(t, 30*time.Second))
	time.AfterFunc(100*time.Millisecond, cancel2)
	if _, err := e.c.Decide(ctx2, newSuggestion(suggestionID(t, "decide"))); !errors.Is(err, council.ErrCanceled) {
		t.Errorf("Decide cancelled: %v, want ErrCanceled", err)
	}
}

func TestAReviewsDeadlineEndsItWithDeadlineExceededAndNoRetry(t *testing.T) {
	e := held(t)
	var attempts atomic.Int32
	c := dialAt(t, e.addr, streamCounter(&attempts))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	votes := 0
	var last error
	for ev, err := range c.Review(ctx, newSuggestion(suggestionID(t, "s"))) {
		if err != nil {
			last = err
			continue
		}
		if ev.Vote != nil {
			votes++
		}
	}
	if !errors.Is(last, council.ErrDeadlineExceeded) || !errors.Is(last, context.DeadlineExceeded) {
		t.Errorf("the review ended with %v, want DEADLINE_EXCEEDED", last)
	}
	if votes != 1 || attempts.Load() != 1 {
		t.Errorf("%d votes in %d attempts, want 1 vote in 1 attempt (DEADLINE_EXCEEDED is not retried)", votes, attempts.Load())
	}
}

func TestDecideAndRangingAReviewTwiceMakeOneDecision(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)
	s := newSuggestion(suggestionID(t, "s"))
	review := c.Review(ctx, s) // the request id is made here, once

	var ids []string
	for range 2 {
		votes := 0
		for ev, err := range review {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Vote != nil {
				votes++
				continue
			}
			ids = append(ids, ev.Decision.GetId())
		}
		if votes != 5 {
			t.Errorf("%d votes, want 5 (a replay streams them again)", votes)
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("decisions %q, want the same one twice", ids)
	}
	if n := countDecisions(t, c, s.GetId()); n != 1 {
		t.Errorf("%d decisions stored, want 1", n)
	}

	d, err := c.Decide(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if d.GetId() == ids[0] || len(d.GetVotes()) != 5 || d.GetSuggestionId() != s.GetId() {
		t.Errorf("Decide returned %v: want a new decision (a new request id) with its 5 votes", d)
	}
	if _, err := c.Decide(ctx, &councilv1.Suggestion{Id: "x"}); !errors.Is(err, council.ErrInvalidArgument) {
		t.Errorf("Decide(bad suggestion): %v, want ErrInvalidArgument", err)
	}
}
