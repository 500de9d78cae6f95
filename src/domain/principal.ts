/**
 * Who is calling (SPEC §8): every call is made by a principal, a name holding one or more roles.
 * Plain data, no I/O: the transport authenticates the caller and hands the domain a Principal,
 * so that rules such as "an agent records outcomes only on decisions it submitted" stay pure.
 */

/** The roles a principal may hold. Not to be confused with the reviewers' roles (safety, …). */
export const ROLES = ["agent", "operator", "approver", "reviewer"] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  /** True only when no authentication is configured at all; see `ANONYMOUS`. */
  readonly anonymous: boolean;
}

/**
 * The name every caller has when no authentication is configured. It is reserved: neither the
 * auth file, nor a JWT, nor a certificate may claim it, because decisions that `anonymous`
 * submitted keep the request-id derivation of the keyspaces written before principals existed.
 */
export const ANONYMOUS_NAME = "anonymous";

/** The caller when no authentication is configured: `anonymous`, with every role. */
export const ANONYMOUS: Principal = Object.freeze({
  name: ANONYMOUS_NAME,
  roles: new Set<Role>(ROLES),
  anonymous: true,
});

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

export function principal(name: string, roles: Iterable<Role>): Principal {
  return Object.freeze({ name, roles: new Set(roles), anonymous: false });
}

/**
 * RecordOutcome: an operator may record any outcome; an agent only on a decision it submitted
 * (`submittedBy` is the decision's `submitted_by`).
 */
export function mayRecordOutcome(p: Principal, submittedBy: string): boolean {
  const scope = outcomeScope(p);
  return scope.kind === "any" || (scope.kind === "own" && scope.submittedBy === submittedBy);
}

/** The decisions a principal may record outcomes on: any, only those it submitted, or none. */
export type OutcomeScope = { kind: "any" } | { kind: "own"; submittedBy: string } | { kind: "none" };

/**
 * The rule of `mayRecordOutcome` before the decision is read, so that a store can check it in
 * the same atomic step that records the outcome: an operator records on any decision, an agent on
 * those whose `submitted_by` is its name, any other principal on none.
 */
export function outcomeScope(p: Principal): OutcomeScope {
  if (p.roles.has("operator")) return { kind: "any" };
  if (p.roles.has("agent")) return { kind: "own", submittedBy: p.name };
  return { kind: "none" };
}

/**
 * ResolveDecision: an approver, never on a decision it submitted, except `anonymous` (with auth
 * off there is only one caller, and it must still be able to approve).
 */
export function mayResolve(p: Principal, submittedBy: string): boolean {
  return p.roles.has("approver") && (p.anonymous || p.name !== submittedBy);
}

/**
 * A principal name is stored on every decision and written on every log line, so it is bounded
 * (512 UTF-8 bytes: room for a Kubernetes service-account subject) and printable. Inner spaces
 * are allowed, since a certificate's common name is often a person's name.
 */
export const PRINCIPAL_NAME_MAX_BYTES = 512;

/** Why `name` cannot name a principal, or undefined when it can. */
export function principalNameProblem(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (new TextEncoder().encode(name).length > PRINCIPAL_NAME_MAX_BYTES) return `must be at most ${PRINCIPAL_NAME_MAX_BYTES} bytes`;
  if (/\p{C}/u.test(name)) return "must not contain control or invisible characters";
  if (name.trim() !== name) return "must not start or end with a space";
  if (name === ANONYMOUS_NAME) return `"${ANONYMOUS_NAME}" is reserved for callers when no authentication is configured`;
  return undefined;
}
