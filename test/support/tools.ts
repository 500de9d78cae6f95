/** Finds external tools the tests drive (grpcurl), and runs commands with a time limit. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The grpcurl binary: on PATH, or where `go install` puts it. test/run.sh installs it. */
export function grpcurlPath(): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), join(process.env.GOPATH ?? join(homedir(), "go"), "bin")]) {
    const candidate = join(dir, "grpcurl");
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error("grpcurl not found: run `bash test/run.sh` once, or `go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3`");
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], options: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env, cwd: options.cwd },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
