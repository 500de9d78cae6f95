/**
 * Size limits on every string and list a client can send, in UTF-8 bytes and items. They keep one
 * request's cost bounded; the README lists them.
 */
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
} as const;
