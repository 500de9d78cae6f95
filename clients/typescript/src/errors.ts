import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/** A failed call, with its gRPC status kept: `code` (e.g. status.INVALID_ARGUMENT) and `details`. */
export class CouncilError extends Error {
  override name = "CouncilError";
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;

  constructor(code: status, details: string, metadata: Metadata = new Metadata()) {
    super(`${status[code] ?? code}: ${details}`);
    this.code = code;
    this.details = details;
    this.metadata = metadata;
  }

  static from(err: unknown): CouncilError {
    if (err instanceof CouncilError) return err;
    const e = err as Partial<ServiceError>;
    if (typeof e?.code === "number") return new CouncilError(e.code, e.details ?? e.message ?? "", e.metadata);
    return new CouncilError(status.UNKNOWN, err instanceof Error ? err.message : String(err));
  }

  /** Whether retrying the same call (with the same request_id) may succeed. */
  get retryable(): boolean {
    return this.code === status.UNAVAILABLE;
  }
}
