/**
 * Which roles may call which RPC (SPEC §8). One table, checked once per call before any handler
 * runs (`authorize`), so that no handler can forget it. A method missing from the table is denied
 * to everyone: a new RPC stays closed until someone decides who may call it.
 *
 * Finer rules that depend on the stored decision (an agent records outcomes only on decisions it
 * submitted; nobody resolves a decision they submitted) are `mayRecordOutcome` and `mayResolve`
 * in src/domain/principal.ts, applied where the decision is read.
 */
import { PermissionDeniedError } from "../../domain/errors.js";
import { ROLES, type Principal, type Role } from "../../domain/principal.js";

/** CouncilService methods, by the name the proto gives them, and the roles that may call each. */
export const METHOD_ROLES: Readonly<Record<string, readonly Role[]>> = Object.freeze({
  ReviewSuggestion: ["agent", "operator"],
  RecordOutcome: ["agent", "operator"],
  ResolveDecision: ["approver"],
  ServeReviews: ["reviewer"],
  GetDecision: ROLES,
  ListDecisions: ROLES,
  AwaitDecision: ROLES,
  GetSummary: ROLES,
  ListLessons: ROLES,
  ListReviewers: ROLES,
  WatchDecisions: ROLES,
});

/**
 * Services that need no token: probes and `grpcurl list/describe` work without one. Under mTLS
 * the TLS handshake still needs a client certificate, since it comes before any service.
 */
export const OPEN_SERVICES: readonly string[] = Object.freeze([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/** The roles that may call `method`, or undefined for a method the table does not know. */
export function rolesFor(method: string): readonly Role[] | undefined {
  return Object.hasOwn(METHOD_ROLES, method) ? METHOD_ROLES[method] : undefined;
}

function either(roles: readonly Role[]): string {
  return roles.length === 1 ? roles[0]! : `${roles.slice(0, -1).join(", ")} or ${roles[roles.length - 1]}`;
}

/** Throws PermissionDeniedError, naming the role needed, unless `p` may call `method`. */
export function authorize(p: Principal, method: string): void {
  const roles = rolesFor(method);
  if (!roles) throw new PermissionDeniedError(`${method} is not open to any role`);
  if (roles.some((r) => p.roles.has(r))) return;
  throw new PermissionDeniedError(`${method} needs the role ${either(roles)}`);
}
