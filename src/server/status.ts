/** Maps typed council errors to gRPC status; anything else is INTERNAL with a generic message. */
import { status, type ServiceError } from "@grpc/grpc-js";
import {
  CouncilError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
} from "../domain/errors.js";

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
  if (err instanceof CouncilError) return as(status.UNKNOWN);
  return { code: status.INTERNAL, details: "internal error", internal: true };
}

export function serviceError(e: GrpcError): Partial<ServiceError> {
  return { code: e.code, details: e.details, message: e.details };
}
