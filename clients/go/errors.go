package council

import (
	"context"
	"errors"
	"regexp"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a call that failed with a gRPC status, from the server or from the connection. Every
// error the Client's calls return for a status is an *Error (possibly wrapped by the caller):
//
//	var e *council.Error
//	if errors.As(err, &e) && e.Code == codes.InvalidArgument {
//		fmt.Println("bad field:", e.Field)
//	}
//
// errors.Is matches it against the sentinel of its status family (ErrUnauthenticated,
// ErrPermissionDenied, ErrResourceExhausted, …); a CANCELED or DEADLINE_EXCEEDED one also matches
// context.Canceled or context.DeadlineExceeded. It keeps its status, so status.FromError,
// status.Code and status.Convert see the code and the server's message as before.
type Error struct {
	// Code is the status code.
	Code codes.Code
	// Message is the status message; for INVALID_ARGUMENT it starts with the field at fault.
	Message string
	// Field is the field an INVALID_ARGUMENT names ("suggestion.title" in "suggestion.title: must
	// not be empty or blank"), or empty.
	Field string

	status *status.Status
}

// Error returns the text of the gRPC status error ("rpc error: code = … desc = …").
func (e *Error) Error() string { return e.status.Err().Error() }

// GRPCStatus returns the status, for status.FromError and the other functions of package status.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Is reports whether target is the sentinel of e's code (or the context error it stands for).
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	s, ok := target.(*sentinel)
	return ok && s.code == e.Code
}

// Retryable reports whether sending the same call again (with the same request id) may succeed:
// only for UNAVAILABLE, the one code the client retries. RESOURCE_EXHAUSTED is not retried, since
// retrying at once would only hit the limit again.
func (e *Error) Retryable() bool { return e.Code == codes.Unavailable }

// sentinel is the value of the Err* variables: a status family that errors.Is matches by code.
type sentinel struct {
	code codes.Code
	text string
}

func (s *sentinel) Error() string { return "council: " + s.text }

// The status families of the errors the service returns, for errors.Is:
//
//	if errors.Is(err, council.ErrPermissionDenied) { … }
var (
	// ErrInvalidArgument: the request was malformed; Error.Field names the field.
	ErrInvalidArgument error = &sentinel{codes.InvalidArgument, "invalid argument"}
	// ErrNotFound: no decision with that id.
	ErrNotFound error = &sentinel{codes.NotFound, "not found"}
	// ErrFailedPrecondition: the request conflicts with what is stored, e.g. a request id reused
	// with a different suggestion, or with a different outcome of the same decision.
	ErrFailedPrecondition error = &sentinel{codes.FailedPrecondition, "failed precondition"}
	// ErrUnauthenticated: no credentials, or ones the server does not accept (a missing, wrong or
	// revoked token; an unknown client certificate). The server says the same whatever the reason.
	ErrUnauthenticated error = &sentinel{codes.Unauthenticated, "unauthenticated"}
	// ErrPermissionDenied: a known caller without the role the call needs; the message names it.
	ErrPermissionDenied error = &sentinel{codes.PermissionDenied, "permission denied"}
	// ErrResourceExhausted: a limit was reached, e.g. the caller's review rate, or a watch that
	// fell too far behind. Never retried by the client.
	ErrResourceExhausted error = &sentinel{codes.ResourceExhausted, "resource exhausted"}
	// ErrUnavailable: the server or its store could not be reached, after every retry.
	ErrUnavailable error = &sentinel{codes.Unavailable, "unavailable"}
	// ErrDeadlineExceeded: the call's deadline passed.
	ErrDeadlineExceeded error = &sentinel{codes.DeadlineExceeded, "deadline exceeded"}
	// ErrCanceled: the call was cancelled.
	ErrCanceled error = &sentinel{codes.Canceled, "canceled"}
	// ErrInternal: the server failed (it sends no details), or a stream broke the protocol.
	ErrInternal error = &sentinel{codes.Internal, "internal error"}
	// ErrDataLoss: the server found stored data damaged or missing.
	ErrDataLoss error = &sentinel{codes.DataLoss, "data loss"}
)

var fieldPrefix = regexp.MustCompile(`^([A-Za-z_][\w.\[\]]*): `)

// FromRPCError returns err as an *Error when it carries a gRPC status (also when wrapped), and
// err unchanged otherwise (nil included). The Client's calls do this already; use it for errors
// from Raw().
func FromRPCError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var withStatus interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &withStatus) || withStatus.GRPCStatus() == nil {
		return err
	}
	return newError(withStatus.GRPCStatus())
}

func newError(s *status.Status) *Error {
	e := &Error{Code: s.Code(), Message: s.Message(), status: s}
	if e.Code == codes.InvalidArgument {
		if m := fieldPrefix.FindStringSubmatch(e.Message); m != nil {
			e.Field = m[1]
		}
	}
	return e
}

// Code returns the gRPC status code of err: codes.OK for nil, the code of a status error (also
// when wrapped), and codes.Unknown for any other error.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// IsInvalidArgument reports a request the server refused as malformed; the status message names
// the field first, as in "suggestion.title: must not be empty or blank".
func IsInvalidArgument(err error) bool { return Code(err) == codes.InvalidArgument }

// IsNotFound reports an unknown decision id.
func IsNotFound(err error) bool { return Code(err) == codes.NotFound }

// IsFailedPrecondition reports a request id reused with a different suggestion (Review), or with a
// different outcome, notes or lessons of the same decision (RecordOutcome).
func IsFailedPrecondition(err error) bool { return Code(err) == codes.FailedPrecondition }

// IsUnavailable reports a server or store that could not be reached, after every retry.
func IsUnavailable(err error) bool { return Code(err) == codes.Unavailable }

// IsUnauthenticated reports missing or refused credentials.
func IsUnauthenticated(err error) bool { return Code(err) == codes.Unauthenticated }

// IsPermissionDenied reports a caller without the role the call needs.
func IsPermissionDenied(err error) bool { return Code(err) == codes.PermissionDenied }

// IsResourceExhausted reports a limit reached, such as the review rate.
func IsResourceExhausted(err error) bool { return Code(err) == codes.ResourceExhausted }
