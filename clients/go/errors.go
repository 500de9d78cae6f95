package council

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
