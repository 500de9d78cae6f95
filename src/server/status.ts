/** Maps typed council errors to gRPC status; anything else is INTERNAL with a generic message. */
import { status, type ServiceError } from "@grpc/grpc-js";
import {
  CouncilError,
  DataLossError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "../domain/errors.js";

/** What a client reads for INTERNAL and DATA_LOSS, whatever the cause; the cause goes to the log. */
export const INTERNAL_MESSAGE = "internal error";
export const DATA_LOSS_MESSAGE = "stored data is damaged or missing";

export interface GrpcError {
  code: status;
  details: string;
}

export function toGrpcError(err: unknown): GrpcError & { internal: boolean } {
  const as = (code: status) => ({ code, details: (err as Error).message, internal: false });
  if (err instanceof InvalidArgumentError) return as(status.INVALID_ARGUMENT);
  if (err instanceof NotFoundError) return as(status.NOT_FOUND);
  if (err instanceof FailedPreconditionError) return as(status.FAILED_PRECONDITION);
  if (err instanceof UnavailableError) return as(status.UNAVAILABLE);
  if (err instanceof ResourceExhaustedError) return as(status.RESOURCE_EXHAUSTED);
  if (err instanceof UnauthenticatedError) return as(status.UNAUTHENTICATED);
  if (err instanceof PermissionDeniedError) return as(status.PERMISSION_DENIED);
  // Their messages carry details for the log (Redis's reply, a key): the client reads a fixed one.
  if (err instanceof DataLossError) return { code: status.DATA_LOSS, details: DATA_LOSS_MESSAGE, internal: true };
  if (err instanceof InternalError) return { code: status.INTERNAL, details: INTERNAL_MESSAGE, internal: true };
  if (err instanceof CouncilError) return as(status.UNKNOWN);
  return { code: status.INTERNAL, details: INTERNAL_MESSAGE, internal: true };
}

export function serviceError(e: GrpcError): Partial<ServiceError> {
  return { code: e.code, details: e.details, message: e.details };
}
