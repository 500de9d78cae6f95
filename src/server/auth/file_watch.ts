/**
 * Files that are re-read when they change: the auth file (and its JWKS file), and the TLS files.
 * `fs.watch` on the files' directories reacts at once (a file replaced by a rename is a new inode,
 * which a watch on the old one never reports), and a periodic stat catches what watching misses
 * (a Kubernetes secret or configmap swaps a `..data` symlink, which some platforms do not report).
 *
 * A check compares a signature of the files (inode, size and times, following symlinks) with the
 * one taken just before the last read; a different one calls the owner's `reload`. Reads run one at
 * a time. What a read found, and whether it is good, is the owner's business: a file that is
 * refused is still "read", so that a bad file is reported once, not at every check.
 */
import { watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../log.js";

export interface FileWatchOptions {
  /** The files' absolute paths now; they may change with what was read (a new JWKS file). */
  paths: () => string[];
  /** Re-reads the files (through `FileWatch.read`). Must not reject. */
  reload: () => Promise<unknown>;
  log: Logger;
  /** What the files are, for log lines: "auth file", "TLS files". */
  what: string;
  /** How often the files are stat'ed for changes that watching missed (default 2 s). */
  pollIntervalMs?: number;
  /** Watch the files' directories (default true). */
  watch?: boolean;
}

/** Inode, size and times of every file: cheap to take, and different after any replacement. */
async function signatureOf(paths: string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map(async (file) => {
      try {
        const s = await stat(file, { bigint: true });
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      } catch (err) {
        return `absent:${(err as NodeJS.ErrnoException).code}`;
      }
    }),
  );
  return parts.join("|");
}

export class FileWatch {
  /** The files' signature taken just before the last read. */
  private signature = "";
  private queue: Promise<unknown> = Promise.resolve();
  private checking = false;
  private dirty = false;
  private closed = false;
  private checksDone = 0;
  private started = false;
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private readonly watchers = new Map<string, FSWatcher>();

  constructor(private readonly o: FileWatchOptions) {}

  /** Starts watching and the periodic check; call once the first `read` is done. */
  start(): void {
    this.started = true;
    this.watchDirectories();
    this.timer = setInterval(() => void this.check(), this.o.pollIntervalMs ?? 2_000);
    this.timer.unref();
  }

  /**
   * Runs `read`, after every read before it, with the files' signature taken just before it: a
   * change made during the read shows as a new signature at the next check.
   */
  read<T>(read: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const signature = await signatureOf(this.o.paths());
      try {
        return await read();
      } finally {
        this.signature = signature;
        this.watchDirectories();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** How many times the files have been checked for a change (watch events and the periodic check). */
  get checks(): number {
    return this.checksDone;
  }

  /** Stops watching and checking. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Reloads when the files' signature changed; runs once at a time, once more if asked meanwhile. */
  private async check(): Promise<void> {
    if (this.checking) {
      this.dirty = true;
      return;
    }
    this.checking = true;
    try {
      for (let round = 0; round < 10 && !this.closed; round++) {
        this.dirty = false;
        if ((await signatureOf(this.o.paths())) !== this.signature) await this.o.reload();
        this.checksDone++;
        if (!this.dirty) break;
      }
    } catch (err) {
      this.log.error({ err }, `${this.o.what} check failed`);
    } finally {
      this.checking = false;
    }
  }

  private get log(): Logger {
    return this.o.log;
  }

  /** Watches the directories of the files as they are now, and stops watching those no longer needed. */
  private watchDirectories(): void {
    if (this.closed || !this.started || this.o.watch === false) return;
    const dirs = new Set(this.o.paths().map((f) => dirname(f)));
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      const cannot = (err: Error) => this.log.warn({ dir, err: err.message }, `cannot watch a directory of the ${this.o.what}; checking periodically instead`);
      try {
        const w = watch(dir, { persistent: false }, () => this.soon());
        w.on("error", (err) => {
          cannot(err);
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (err) {
        cannot(err as Error);
      }
    }
  }

  /** A burst of events (a rotation writes several files) costs one check, shortly after the last. */
  private soon(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), 25);
    this.debounce.unref();
  }
}
