/** Council's TypeScript client. Start with `connect(address)`; see README.md. */
export {
  connect,
  CouncilClient,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_GUARD_TIMEOUT_MS,
  DEFAULT_RETRY_POLICY,
  DEFAULT_REVIEW_TIMEOUT_MS,
  Review,
  Watch,
} from "./client.js";
export type {
  CallOptions,
  ConnectOptions,
  DecisionFilter,
  GuardOptions,
  OutcomeDetails,
  ResolveOptions,
  RetryPolicy,
  ReviewOptions,
  SuggestionInput,
  TlsOptions,
  VerdictInput,
  WatchEvent,
  WatchOptions,
} from "./client.js";
export {
  councilReviewTool,
  openAiTool,
  suggestionFromToolInput,
  toolResult,
  type JsonSchema,
  type OpenAiTool,
  type ToolDefinition,
  type ToolResult,
} from "./tool.js";
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
