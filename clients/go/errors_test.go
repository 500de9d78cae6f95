package council_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	council "github.com/council-dev/council/clients/go"
)

// TestErrorFamilies checks, without a server, that each status family converts to an *Error that
// errors.Is matches with its sentinel only, keeps its status, and survives wrapping.
func TestErrorFamilies(t *testing.T) {
	families := []struct {
		code     codes.Code
		sentinel error
	}{
		{codes.InvalidArgument, council.ErrInvalidArgument},
		{codes.NotFound, council.ErrNotFound},
		{codes.FailedPrecondition, council.ErrFailedPrecondition},
		{codes.Unauthenticated, council.ErrUnauthenticated},
		{codes.PermissionDenied, council.ErrPermissionDenied},
		{codes.ResourceExhausted, council.ErrResourceExhausted},
		{codes.Unavailable, council.ErrUnavailable},
		{codes.DeadlineExceeded, council.ErrDeadlineExceeded},
		{codes.Canceled, council.ErrCanceled},
		{codes.Internal, council.ErrInternal},
		{codes.DataLoss, council.ErrDataLoss},
	}
	for _, f := range families {
		t.Run(f.code.String(), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", council.FromRPCError(status.Error(f.code, "why")))
			var e *council.Error
			if !errors.As(err, &e) || e.Code != f.code || e.Message != "why" {
				t.Fatalf("errors.As: %#v, want an *Error with code %v and message %q", e, f.code, "why")
			}
			for _, other := range families {
				if got := errors.Is(err, other.sentinel); got != (other.code == f.code) {
					t.Errorf("errors.Is(%v, Err for %v) = %v", f.code, other.code, got)
				}
			}
			if st, ok := status.FromError(e); !ok || st.Code() != f.code || st.Message() != "why" {
				t.Errorf("status.FromError: %v, %v", st, ok)
			}
			if council.Code(err) != f.code {
				t.Errorf("Code: %v", council.Code(err))
			}
			if e.Retryable() != (f.code == codes.Unavailable) {
				t.Errorf("Retryable: %v", e.Retryable())
			}
		})
	}
}

func TestErrorFieldAndContextErrors(t *testing.T) {
	var e *council.Error
	err := council.FromRPCError(status.Error(codes.InvalidArgument, "suggestion.fix_steps[2]: too long"))
	if !errors.As(err, &e) || e.Field != "suggestion.fix_steps[2]" {
		t.Errorf("field of %v: %q, want suggestion.fix_steps[2]", err, e.Field)
	}
	err = council.FromRPCError(status.Error(codes.InvalidArgument, "no field named here"))
	if !errors.As(err, &e) || e.Field != "" {
		t.Errorf("field of %v: %q, want none", err, e.Field)
	}
	if err := council.FromRPCError(status.Error(codes.DeadlineExceeded, "late")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is not context.DeadlineExceeded", err)
	}
	if err := council.FromRPCError(status.Error(codes.Canceled, "gone")); !errors.Is(err, context.Canceled) {
		t.Errorf("%v is not context.Canceled", err)
	}
	plain := errors.New("not a status")
	if council.FromRPCError(plain) != plain || council.FromRPCError(nil) != nil {
		t.Error("FromRPCError changed an error that has no status")
	}
}
