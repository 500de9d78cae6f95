/**
 * Size limits on every string and list a client can send, in UTF-8 bytes and items. They keep one
 * request's cost bounded; the README lists them. Also the byte bounds of what the server sends.
 */
import type { Decision, Lesson, Suggestion, Vote } from "./model.js";

export const LIMITS = {
  idBytes: 256,
  titleBytes: 1024,
  textBytes: 65536,
  fixSteps: 100,
  fixStepBytes: 4096,
  filesAffected: 1000,
  fileBytes: 1024,
  requestIdBytes: 256,
  notesBytes: 65536,
  pageTokenBytes: 1024,
  defaultPageSize: 50,
  maxPageSize: 500,
  /** The largest message the server sends or accepts (`grpc.max_send_message_length`, `…receive…`). */
  messageBytes: 4 * 1024 * 1024,
  /**
   * What one page of ListDecisions or ListLessons may hold, as `decisionBytes`/`lessonBytes` count:
   * a page ends early rather than pass it (always holding at least one item, which the limits
   * above keep well under `messageBytes`), and `next_page_token` continues.
   */
  pageBytes: 2 * 1024 * 1024,
} as const;

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

/** UTF-8 length of a string, counted without allocating (lone surrogates count 3, as U+FFFD). */
export function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const str = (s: string) => utf8Bytes(s) + STRING_OVERHEAD;
const strs = (list: readonly string[]) => list.reduce((sum, s) => sum + str(s), 0);

export function suggestionBytes(s: Suggestion): number {
  return MESSAGE_OVERHEAD + str(s.id) + str(s.title) + str(s.description) + str(s.reasoning) + 4 * NUMBER + strs(s.fixSteps) + strs(s.filesAffected);
}

export function voteBytes(v: Vote): number {
  return MESSAGE_OVERHEAD + 3 * NUMBER + str(v.reasoning) + strs(v.concerns) + strs(v.conditions) + TIMESTAMP + str(v.veto);
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
    str(d.outcomeRecordedBy)
  );
}

/** An upper bound of the encoded size of a lesson, as the server sends it. */
export function lessonBytes(l: Lesson): number {
  return MESSAGE_OVERHEAD + str(l.decisionId) + NUMBER + str(l.lessons) + str(l.notes) + TIMESTAMP + str(l.recordedBy);
}
