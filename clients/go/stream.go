package council

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Stream is a server stream the client keeps open for the caller: a watch (Watch) or the wait for
// a decision (AwaitDecision). It opens when it is made, reports when it is live (Ready), and hands
// its items to one range over All.
//
//	w := client.Watch(ctx, council.WatchVotes())
//	defer w.Close()
//	if err := w.WaitReady(ctx); err != nil {
//		return err // it failed before it was live
//	}
//	// Live: every review stored from now on is sent.
//	for ev, err := range w.All() {
//		if err != nil {
//			return err
//		}
//		fmt.Println(ev.GetDecisionId())
//	}
//
// It ends cleanly, with no error, when the caller cancels its context, calls Close, or breaks out
// of the loop; its context's deadline ends it with a DEADLINE_EXCEEDED error. Until it ends it
// holds a goroutine and a call on the server: cancel its context, call Close, or range it to the
// end.
type Stream[T any] struct {
	ready     chan struct{} // closed once the server's response headers arrived
	readyOnce sync.Once
	items     chan T        // unbuffered: the pump holds at most one item the caller has not taken
	done      chan struct{} // closed once the pump has ended; err is set before
	err       error         // why the stream ended, nil if cleanly
	stop      context.CancelFunc
	ranged    atomic.Bool
}

// openStream starts run on its own goroutine. run calls live when the server's response headers
// arrive and emit for each item (emit returns false once ctx is done, and run then returns
// ctx.Err()); it returns why the stream ended. A cancellation by the caller (its context, Close,
// a break) ends the stream without an error whatever run returns.
func openStream[T any](caller context.Context, run func(ctx context.Context, live func(), emit func(T) bool) error) *Stream[T] {
	ctx, stop := context.WithCancel(caller)
	s := &Stream[T]{ready: make(chan struct{}), items: make(chan T), done: make(chan struct{}), stop: stop}
	go func() {
		defer close(s.done)
		defer close(s.items)
		defer stop()
		err := run(ctx, s.live, func(item T) bool {
			select {
			case s.items <- item:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err == nil || stoppedByCaller(caller, ctx) {
			return
		}
		if _, ok := status.FromError(err); !ok && ctx.Err() != nil {
			// The context ended between two calls (e.g. in a backoff): its deadline, as a status.
			err = status.FromContextError(ctx.Err()).Err()
		}
		s.err = FromRPCError(err)
	}()
	return s
}

// stoppedByCaller is true when ctx ended because the caller cancelled caller, or called Close or
// broke out of the loop (which cancel ctx): not because a deadline passed.
func stoppedByCaller(caller, ctx context.Context) bool {
	if err := caller.Err(); err != nil {
		return errors.Is(err, context.Canceled)
	}
	return ctx.Err() != nil
}

func (s *Stream[T]) live() {
	s.readyOnce.Do(func() { close(s.ready) })
}

// Ready is closed once the stream is live: the server sent its response headers, which it does
// once it has subscribed the call (for a watch: every review stored from then on is sent). It is
// never closed if the stream fails before that; WaitReady reports that case.
func (s *Stream[T]) Ready() <-chan struct{} {
	return s.ready
}

// WaitReady waits until the stream is live and returns nil, or returns why it is not: the error
// the stream ended with before it was live (a CANCELED one if it was cancelled or closed), or
// ctx's error.
func (s *Stream[T]) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	default:
	}
	select {
	case <-s.ready:
		return nil
	case <-s.done:
		select {
		case <-s.ready: // live, then ended: it was live
			return nil
		default:
		}
		if s.err != nil {
			return s.err
		}
		return FromRPCError(status.Error(codes.Canceled, "council: the stream was cancelled before it was live"))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// All returns the stream's items as they arrive, for one range loop: each item with a nil error,
// then, if the stream failed, a nil item with the error (an *Error), and nothing after it. The
// loop ends without an error when the stream ends cleanly (the server finished it, or the caller
// cancelled it). Breaking out of the loop closes the stream. A second range over All yields only
// an error.
func (s *Stream[T]) All() iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if !s.ranged.CompareAndSwap(false, true) {
			yield(zero, errors.New("council: a stream can be ranged over once"))
			return
		}
		defer s.stop()
		for item := range s.items {
			if !yield(item, nil) {
				return
			}
		}
		<-s.done
		if s.err != nil {
			yield(zero, s.err)
		}
	}
}

// Close ends the stream (the server sees the call cancelled); a range over All then ends without
// an error. Calling it again, or after the stream ended, does nothing.
func (s *Stream[T]) Close() {
	s.stop()
}
