/** Council's TypeScript client. Start with `connect(address)`; see README.md. */
export { connect, CouncilClient, DEFAULT_GUARD_TIMEOUT_MS, Review } from "./client.js";
export type {
  CallOptions,
  ConnectOptions,
  GuardOptions,
  ResolveOptions,
  RetryPolicy,
  ReviewOptions,
  SuggestionInput,
  TlsOptions,
  VerdictInput,
  WatchEvent,
} from "./client.js";
export { guardVerdict, isFinal, statusOf, type GuardOutcome, type GuardVerdict } from "./guard.js";
export {
  CancelledError,
  CouncilError,
  councilError,
  DataLossError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.js";
export { status } from "@grpc/grpc-js";
export {
  DecisionStatus,
  DecisionType,
  Effort,
  ImpactLevel,
  Outcome,
  ReviewerRole,
  RiskLevel,
  VerdictType,
  VoteType,
  type Decision,
  type Lesson,
  type ReviewerProfile,
  type Suggestion,
  type Verdict,
  type Vote,
} from "./gen/council/v1/review.js";
export type { GetSummaryResponse, ListReviewersResponse } from "./gen/council/v1/council_service.js";
