/**
 * Waiting in tests without fixed sleeps. A test waits for the event itself (`within`,
 * `nextEvent`) or, where there is no event to wait for, polls the very condition it needs with a
 * deadline (`waitFor`). Every wait is bounded and, when it gives up, says what it was waiting for,
 * so that a slow machine makes a test slower, never wrong, and a real failure names itself.
 */
import type { EventEmitter } from "node:events";

export interface WaitOptions {
  /** What the test is waiting for, for the failure message ("the watch to end"). */
  what: string;
  /** Gives up after this long. Default 5000. */
  timeoutMs?: number;
  /** Pause between two checks of a polled condition. Default 10. */
  intervalMs?: number;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` until it returns a truthy value, and returns that value. An exception thrown
 * by `condition` ends the wait at once (e.g. "the process exited"). Fails after `timeoutMs`,
 * naming `what`.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions): Promise<NonNullable<T>> {
  const { what, timeoutMs = 5000, intervalMs = 10 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

/** Resolves as `promise` does, or fails after `timeoutMs` naming `what`. */
export function within<T>(promise: Promise<T>, options: Omit<WaitOptions, "intervalMs">): Promise<T> {
  const { what, timeoutMs = 5000 } = options;
  return new Promise<T>((resolve, reject) => {
    const fail = () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    const timer = setTimeout(fail, timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The next `event` that `emitter` emits (its first argument), within `timeoutMs`. */
export function nextEvent<T = unknown>(emitter: EventEmitter, event: string, options: Omit<WaitOptions, "intervalMs">): Promise<T> {
  let listener!: (value: T) => void;
  const happened = new Promise<T>((resolve) => {
    listener = resolve;
    emitter.once(event, listener);
  });
  return within(happened, options).finally(() => emitter.off(event, listener));
}
