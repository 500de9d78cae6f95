package council_test

// Watches and awaits: live once the server's response headers arrive (Ready, WaitReady), and
// ended cleanly, with no error, by the caller (its context, Close, a break), while their deadline
// ends them with DEADLINE_EXCEEDED. A stand-in server shows exactly when Ready closes; the held
// server's council_watchers gauge shows that the server sees a watch end.

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// standIn is a gRPC server on 127.0.0.1 whose every call runs handle.
func standIn(t *testing.T, handle func(method string, stream grpc.ServerStream) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		return handle(method, stream)
	}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// drain ranges over a stream in the background; the channel gets the error it ended with (nil if
// none) and the items it yielded.
func drain[T any](s *council.Stream[T]) <-chan struct {
	items []T
	err   error
} {
	done := make(chan struct {
		items []T
		err   error
	}, 1)
	go func() {
		var r struct {
			items []T
			err   error
		}
		for item, err := range s.All() {
			if err != nil {
				r.err = err
				continue
			}
			r.items = append(r.items, item)
		}
		done <- r
	}()
	return done
}

func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
		panic("unreachable")
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWatchIsReadyWhenTheServerSendsItsHeadersAndEndsCleanlyWhenCancelled(t *testing.T) {
	entered, release, serverSawCancel := make(chan struct{}), make(chan struct{}), make(chan struct{})
	addr := standIn(t, func(method string, stream grpc.ServerStream) error {
		if method != councilv1.CouncilService_WatchDecisions_FullMethodName {
			return status.Error(codes.Unimplemented, method)
		}
		if err := stream.RecvMsg(&councilv1.WatchDecisionsRequest{}); err != nil {
			return err
		}
		close(entered)
		<-release
		if err := stream.SendHeader(metadata.MD{}); err != nil {
			return err
		}
		if err := stream.SendMsg(&councilv1.WatchDecisionsResponse{DecisionId: "dec-1", SuggestionId: "s-1"}); err != nil {
			return err
		}
		<-stream.Context().Done()
		close(serverSawCancel)
		return stream.Context().Err()
	})
	c := dialAt(t, addr)
	ctx, cancel := context.WithCancel(bounded(t, 20*time.Second))
	defer cancel()

	w := c.Watch(ctx)
	within(t, entered, 10*time.Second, "the watch reaching the server")
	if isClosed(w.Ready()) {
		t.Fatal("Ready is closed before the server sent its headers")
	}
	close(release)
	if err := w.WaitReady(bounded(t, 10*time.Second)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if !isClosed(w.Ready()) {
		t.Error("WaitReady returned but Ready is not closed")
	}

	var got []string
	for ev, err := range w.All() {
		if err != nil {
			t.Fatalf("the watch cancelled by its caller ended with %v, want no error", err)
		}
		got = append(got, ev.GetDecisionId())
		cancel() // the caller cancels: the loop ends, with no error
	}
	if len(got) != 1 || got[0] != "dec-1" {
		t.Errorf("events %q, want [dec-1]", got)
	}
	within(t, serverSawCancel, 10*time.Second, "the server seeing the watch cancelled")
	for _, err := range w.All() {
		if err == nil || !strings.Contains(err.Error(), "once") {
			t.Errorf("a second range: %v, want an error saying a stream is ranged once", err)
		}
	}
}

func TestAWatchThatFailsBeforeItIsLiveSaysWhy(t *testing.T) {
	addr := standIn(t, func(string, grpc.ServerStream) error {
		return status.Error(codes.PermissionDenied, "WatchDecisions needs the role observer")
	})
	c := dialAt(t, addr)
	w := c.Watch(bounded(t, 10*time.Second))
	err := w.WaitReady(bounded(t, 10*time.Second))
	if !errors.Is(err, council.ErrPermissionDenied) {
		t.Errorf("WaitReady: %v, want ErrPermissionDenied", err)
	}
	if isClosed(w.Ready()) {
		t.Error("Ready is closed for a watch that never was live")
	}
	r := within(t, drain(w), 10*time.Second, "the failed watch's loop ending")
	if len(r.items) != 0 || !errors.Is(r.err, council.ErrPermissionDenied) {
		t.Errorf("the loop got %d events and %v, want none and ErrPermissionDenied", len(r.items), r.err)
	}
}

// watchers reads the held server's council_watchers gauge.
func (e *heldEnv) watchers(t *testing.T) int {
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
		if value, ok := strings.CutPrefix(lines.Text(), "council_watchers "); ok {
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Fatalf("council_watchers %q: %v", value, err)
			}
			return n
		}
	}
	t.Fatal("no council_watchers in the metrics")
	return 0
}

func TestAWatchEndedByItsCallerEndsCleanlyAndTheServerSeesIt(t *testing.T) {
	e := held(t)
	// The server renders its metrics page at most once a second: each step waits to see the
	// gauge move up (a fresh page) before it checks that it moved back down.
	base := e.watchers(t)
	open := func(ctx context.Context) *council.Stream[*councilv1.WatchDecisionsResponse] {
		t.Helper()
		w := e.c.Watch(ctx)
		if err := w.WaitReady(bounded(t, 10*time.Second)); err != nil {
			t.Fatalf("WaitReady: %v", err)
		}
		eventually(t, 10*time.Second, "the server counting the watch", func() bool { return e.watchers(t) == base+1 })
		return w
	}
	ended := func(how string) {
		t.Helper()
		eventually(t, 10*time.Second, "the server ending the watch after "+how, func() bool { return e.watchers(t) == base })
	}

	// The caller cancels the context.
	ctx, cancel := context.WithCancel(bounded(t, 30*time.Second))
	w := open(ctx)
	done := drain(w)
	cancel()
	if r := within(t, done, 10*time.Second, "the cancelled watch's loop ending"); r.err != nil {
		t.Errorf("a watch cancelled by its caller ended with %v, want no error", r.err)
	}
	ended("cancel")

	// Close.
	w = open(bounded(t, 30*time.Second))
	done = drain(w)
	w.Close()
	if r := within(t, done, 10*time.Second, "the closed watch's loop ending"); r.err != nil {
		t.Errorf("a closed watch ended with %v, want no error", r.err)
	}
	ended("Close")

	// A break, at the first event: a review stored while the watch is live.
	w = open(bounded(t, 30*time.Second))
	go func() { _, _ = e.c.Decide(bounded(t, 30*time.Second), newSuggestion(suggestionID(t, "s"))) }()
	n := 0
	for _, err := range w.All() {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Errorf("%d events before the break, want 1", n)
	}
	ended("a break")

	// The deadline is not the caller's cancelling: DEADLINE_EXCEEDED.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelDeadline()
	r := within(t, drain(e.c.Watch(deadline)), 10*time.Second, "the watch's loop ending at its deadline")
	if !errors.Is(r.err, council.ErrDeadlineExceeded) || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("a watch past its deadline ended with %v, want DEADLINE_EXCEEDED", r.err)
	}
	ended("its deadline")
}

func TestAwaitDecisionIsReadyAtItsFirstStateAndEndsCleanlyOnClose(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 30*time.Second)
	d, err := c.Decide(ctx, needsPeople(suggestionID(t, "s")))
	if err != nil {
		t.Fatal(err)
	}
	if d.GetStatus() != councilv1.DecisionStatus_DECISION_STATUS_PENDING {
		t.Fatalf("decision %s is %v, want pending", d.GetId(), d.GetStatus())
	}

	a := c.AwaitDecision(ctx, d.GetId())
	if err := a.WaitReady(bounded(t, 10*time.Second)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	var states []councilv1.DecisionStatus
	for state, err := range a.All() {
		if err != nil {
			t.Fatalf("an await closed by its caller ended with %v, want no error", err)
		}
		states = append(states, state.GetStatus())
		a.Close() // not a break: the loop ends by itself, with no error
	}
	if len(states) != 1 || states[0] != councilv1.DecisionStatus_DECISION_STATUS_PENDING {
		t.Errorf("states %v, want [PENDING]", states)
	}

	// An await that fails at once (an unknown decision) is never live, and says why.
	a = c.AwaitDecision(ctx, "dec-does-not-exist-"+runID)
	if err := a.WaitReady(bounded(t, 10*time.Second)); !errors.Is(err, council.ErrNotFound) {
		t.Errorf("WaitReady of an unknown decision: %v, want ErrNotFound", err)
	}
	a.Close()
}
