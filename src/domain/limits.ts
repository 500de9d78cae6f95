/**
 * Size limits on every string and list a client can send, in UTF-8 bytes and items. They keep one
 * request's cost bounded; the README lists them. Also the byte bounds of what the server sends.
 */
import type { Decision, Lesson, Suggestion, Verdict, Vote } from "./model.js";

export const LIMITS = {
  idBytes: 256,
  titleBytes: 1024,
  textBytes: 65536,
  fixSteps: 100,
  fixStepBytes: 4096,
  filesAffected: 1000,
  fileBytes: 1024,
  /**
   * A suggestion's `diff` (the change as a unified diff). The largest field of any request: it
   * sets most of the largest request the server reads (`grpc.max_receive_message_length`).
   */
  diffBytes: 1024 * 1024,
  requestIdBytes: 256,
  notesBytes: 65536,
  /**
   * A verdict's comment (ResolveDecision). Kept well under notesBytes because a decision carries
   * up to a hundred verdicts (approvals are at most 100), and it must still fit one message.
   */
  commentBytes: 8192,
  pageTokenBytes: 1024,
  defaultPageSize: 50,
  maxPageSize: 500,
  /**
   * The largest message the server sends (`grpc.max_send_message_length`). What it accepts is
   * smaller: the largest request REQUEST_FIELD_LIMITS allow (src/server/decode.ts works it out).
   */
  messageBytes: 4 * 1024 * 1024,
  /**
   * What one page of ListDecisions or ListLessons may hold, as `decisionBytes`/`lessonBytes` count:
   * a page ends early rather than pass it (always holding at least one item, which the limits
   * above keep well under `messageBytes`), and `next_page_token` continues.
   */
  pageBytes: 2 * 1024 * 1024,
  /**
   * An external reviewer's vote (TaskVote): its reasoning, and the items of its concerns and of
   * its conditions. Smaller than a suggestion's texts because a decision carries five votes beside
   * the largest suggestion (about 2.6 MB with a 1 MiB diff) and up to a hundred verdicts, and must
   * still fit one message (`messageBytes`); a vote past them is invalid, not refused.
   */
  voteReasoningBytes: 16 * 1024,
  voteItems: 16,
  voteItemBytes: 1024,
  /** A veto condition an external reviewer names (snake_case). */
  vetoChars: 64,
} as const;

/** The limit of one string or list field a client sends: UTF-8 bytes of a string (each item's, in a list), items of a list. */
export interface FieldLimit {
  bytes?: number;
  items?: number;
}

/**
 * The limits above, by message (its full proto name) and field (its proto name), for every string
 * and list of every request. The server checks them on a request's bytes before it decodes them
 * (so a request cannot make it allocate more than its limits allow), and works out from them the
 * largest valid request, which is what it accepts (`grpc.max_receive_message_length`). A string or
 * list field of a request that has no entry here stops the server at start-up.
 */
export const REQUEST_FIELD_LIMITS: Readonly<Record<string, Readonly<Record<string, FieldLimit>>>> = {
  "council.v1.Suggestion": {
    id: { bytes: LIMITS.idBytes },
    title: { bytes: LIMITS.titleBytes },
    description: { bytes: LIMITS.textBytes },
    reasoning: { bytes: LIMITS.textBytes },
    fix_steps: { items: LIMITS.fixSteps, bytes: LIMITS.fixStepBytes },
    files_affected: { items: LIMITS.filesAffected, bytes: LIMITS.fileBytes },
    diff: { bytes: LIMITS.diffBytes },
  },
  "council.v1.ReviewSuggestionRequest": { request_id: { bytes: LIMITS.requestIdBytes }, supersedes: { bytes: LIMITS.idBytes } },
  "council.v1.GetDecisionRequest": { id: { bytes: LIMITS.idBytes } },
  "council.v1.ListDecisionsRequest": { suggestion_id: { bytes: LIMITS.idBytes }, page_token: { bytes: LIMITS.pageTokenBytes } },
  "council.v1.RecordOutcomeRequest": {
    decision_id: { bytes: LIMITS.idBytes },
    notes: { bytes: LIMITS.notesBytes },
    lessons: { bytes: LIMITS.notesBytes },
    request_id: { bytes: LIMITS.requestIdBytes },
  },
  "council.v1.ListLessonsRequest": { page_token: { bytes: LIMITS.pageTokenBytes } },
  "council.v1.ResolveDecisionRequest": {
    decision_id: { bytes: LIMITS.idBytes },
    comment: { bytes: LIMITS.commentBytes },
    request_id: { bytes: LIMITS.requestIdBytes },
  },
  "council.v1.AwaitDecisionRequest": { decision_id: { bytes: LIMITS.idBytes } },
  "council.v1.ReviewerHello": { roles: { items: 16 } },
  // Read up to a suggestion's limits, so that a vote past the vote limits above (checked after
  // decoding) is an invalid vote for its task rather than the end of the reviewer's stream.
  "council.v1.TaskVote": {
    task_id: { bytes: LIMITS.idBytes },
    reasoning: { bytes: LIMITS.textBytes },
    concerns: { items: LIMITS.fixSteps, bytes: LIMITS.fixStepBytes },
    conditions: { items: LIMITS.fixSteps, bytes: LIMITS.fixStepBytes },
    veto: { bytes: LIMITS.idBytes },
  },
};

/*
 * Sizes in bytes of what the server sends, without encoding it: an upper bound of the protobuf
 * encoding (each string costs its UTF-8 bytes plus at most a 2-byte tag and a 5-byte length; each
 * number or enum at most a tag and 10 bytes; each timestamp or nested message header a little
 * more). Listings and watches budget in these bytes; a test holds them above the real encoding.
 */
const STRING_OVERHEAD = 8;
const NUMBER = 12;
const TIMESTAMP = 32;
const MESSAGE_OVERHEAD = 8;

/**
 * UTF-8 length of a string, counted without allocating (lone surrogates count 3, as U+FFFD), by
 * Node's native count: a page of listings counts every string of 50 decisions, and a JavaScript
 * loop over their characters was 20 times slower.
 */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

const str = (s: string) => utf8Bytes(s) + STRING_OVERHEAD;
const strs = (list: readonly string[]) => list.reduce((sum, s) => sum + str(s), 0);

export function suggestionBytes(s: Suggestion): number {
  return (
    MESSAGE_OVERHEAD +
    str(s.id) +
    str(s.title) +
    str(s.description) +
    str(s.reasoning) +
    4 * NUMBER +
    strs(s.fixSteps) +
    strs(s.filesAffected) +
    str(s.diff)
  );
}

export function voteBytes(v: Vote): number {
  return MESSAGE_OVERHEAD + 3 * NUMBER + str(v.reasoning) + strs(v.concerns) + strs(v.conditions) + TIMESTAMP + str(v.veto) + str(v.castBy);
}

/** An upper bound of the encoded size of a decision, as the server sends it. */
export function decisionBytes(d: Decision): number {
  return (
    MESSAGE_OVERHEAD +
    str(d.id) +
    str(d.suggestionId) +
    4 * NUMBER +
    d.votes.reduce((sum, v) => sum + voteBytes(v), 0) +
    str(d.finalReasoning) +
    strs(d.conditions) +
    2 * TIMESTAMP +
    str(d.outcomeNotes) +
    str(d.lessonsLearned) +
    str(d.policyVersion) +
    suggestionBytes(d.suggestion) +
    str(d.requestId) +
    str(d.submittedBy) +
    str(d.outcomeRecordedBy) +
    // status, approvals_required, expires_at, supersedes, superseded_by, and each verdict.
    2 * NUMBER +
    TIMESTAMP +
    str(d.supersedes) +
    str(d.supersededBy) +
    d.verdicts.reduce((sum, v) => sum + verdictBytes(v), 0)
  );
}

/** An upper bound of the encoded size of a verdict, as the server sends it inside a decision. */
export function verdictBytes(v: Verdict): number {
  return MESSAGE_OVERHEAD + str(v.by) + NUMBER + str(v.comment) + TIMESTAMP;
}

/** An upper bound of the encoded size of a lesson, as the server sends it. */
export function lessonBytes(l: Lesson): number {
  return MESSAGE_OVERHEAD + str(l.decisionId) + NUMBER + str(l.lessons) + str(l.notes) + TIMESTAMP + str(l.recordedBy);
}
