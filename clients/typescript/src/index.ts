/** Council's TypeScript client. Start with `connect(address)`; see README.md. */
export { connect, CouncilClient, Review } from "./client.js";
export type { ConnectOptions, RetryPolicy, ReviewOptions, SuggestionInput, TlsOptions, WatchEvent } from "./client.js";
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
  DecisionType,
  Effort,
  ImpactLevel,
  Outcome,
  ReviewerRole,
  RiskLevel,
  VoteType,
  type Decision,
  type Lesson,
  type ReviewerProfile,
  type Suggestion,
  type Vote,
} from "./gen/council/v1/review.js";
export type { GetSummaryResponse, ListReviewersResponse } from "./gen/council/v1/council_service.js";
