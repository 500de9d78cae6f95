/**
 * `council`: the operator and approver command line (SPEC section 10), on the TypeScript client.
 * This file reads the command line (node:util parseArgs), prints help, runs one command and turns
 * how it ended into an exit code; commands.ts holds the commands, render.ts the output for people.
 */
import { parseArgs } from "node:util";
import { COMMANDS, type Command, type Flag, type Values } from "./commands.js";
import { addrOf, Context, DEFAULT_ADDR, parseDuration, type GlobalFlags, type Streams } from "./context.js";
import { describeFailure, EXIT } from "./errors.js";
import { MAX_WIDTH, wrap } from "./render.js";

/** The flags every command takes. */
export const GLOBAL_FLAGS: Record<string, Flag> = {
  addr: { type: "string", value: "HOST:PORT", help: `the server (env COUNCIL_ADDR; default ${DEFAULT_ADDR})` },
  token: { type: "string", value: "TOKEN", help: "bearer token (env COUNCIL_TOKEN, which keeps it out of `ps`)" },
  tls: { type: "boolean", help: "use TLS, trusting the system's CAs (env COUNCIL_TLS=true)" },
  ca: { type: "string", value: "FILE", help: "TLS, trusting this CA's PEM (env COUNCIL_CA_FILE)" },
  cert: { type: "string", value: "FILE", help: "mTLS: this client certificate, PEM (env COUNCIL_CERT_FILE)" },
  key: { type: "string", value: "FILE", help: "mTLS: the certificate's key, PEM (env COUNCIL_KEY_FILE)" },
  "server-name": { type: "string", value: "NAME", help: "the name the server certificate carries, if not the host (env COUNCIL_SERVER_NAME)" },
  output: { type: "string", short: "o", value: "FORMAT", help: "table (for people, the default) or json (one object per line)" },
  timeout: { type: "string", value: "DURATION", help: "deadline of each call (default 30s); await, review --wait, watch: how long to wait" },
  help: { type: "boolean", short: "h", help: "show help" },
};

const PAD = 30;

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;
type HandledSignal = keyof typeof SIGNAL_NUMBERS;

/** Each flag with its help, the help wrapped so that no line is wider than MAX_WIDTH. */
function flagLines(flags: Record<string, Flag>): string[] {
  return Object.entries(flags).flatMap(([name, f]) => {
    const left = `  ${f.short ? `-${f.short}, ` : ""}--${name}${f.value ? ` ${f.value}` : ""}`;
    const help = wrap(f.help, MAX_WIDTH - PAD);
    const first = left.length < PAD ? [`${left.padEnd(PAD)}${help.shift() ?? ""}`] : [left];
    return [...first, ...help.map((h) => `${" ".repeat(PAD)}${h}`)];
  });
}

function usageLine(c: Command): string {
  return `Usage: council ${c.name}${c.args ? ` ${c.args}` : ""}${Object.keys(c.flags).length ? " [flags]" : ""}`;
}

export function commandHelp(c: Command): string {
  return [
    `council ${c.name}: ${c.summary}`,
    "",
    usageLine(c),
    ...(c.details ? ["", ...c.details] : []),
    ...(Object.keys(c.flags).length ? ["", "Flags:", ...flagLines(c.flags)] : []),
    "",
    ...wrap("Global flags: --addr, --token, --tls, --ca, --cert, --key, --server-name, -o/--output, --timeout (see `council --help`)", MAX_WIDTH),
    "",
    "Example:",
    ...c.examples.map((e) => `  ${e}`),
    "",
  ].join("\n");
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    "council: review suggestions, approve or reject what waits for people, and watch the council.",
    "",
    "Usage: council COMMAND [ARGS] [flags]      council COMMAND --help for its flags and an example",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Global flags:",
    ...flagLines(GLOBAL_FLAGS),
    "",
    "Exit codes: 0 done; 1 error (unreachable, refused, not found); 2 usage. review and await tell",
    "the decision's status: 0 approved, 3 rejected or superseded, 4 pending, 5 expired.",
    "",
    "Example:",
    "  export COUNCIL_ADDR=council.internal:50051 COUNCIL_CA_FILE=ca.crt COUNCIL_TOKEN=…",
    "  council pending",
    "  council approve dec-5f0c3a9e1b2d4c6f8a0b1c2d --comment 'Checked the rollout plan'",
    "",
  ].join("\n");
}

const toParseArgs = (flags: Record<string, Flag>) =>
  Object.fromEntries(
    Object.entries(flags).map(([name, f]) => [name, { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) }]),
  );

/** The index of the command's name: the first argument that is neither a flag nor a global flag's value. */
function commandIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return -1;
    if (!a.startsWith("-") || a === "-") return i;
    if (a.includes("=")) continue;
    const long = a.startsWith("--") ? a.slice(2) : Object.entries(GLOBAL_FLAGS).find(([, f]) => f.short && `-${f.short}` === a)?.[0];
    if (long && GLOBAL_FLAGS[long]?.type === "string") i++;
  }
  return -1;
}

/** parseArgs's errors in one short line: `unknown flag --foo`, `--addr needs a value`. */
function parseError(err: unknown): string {
  const e = err as Error & { code?: string };
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'([^']+)'/.exec(e.message)?.[1];
    return `unknown flag ${flag ?? ""}`.trim();
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const flag = /'(-[^ ']+)/.exec(e.message)?.[1];
    return /argument missing/.test(e.message) ? `${flag} needs a value` : `${flag} takes no value`;
  }
  if (e.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") return `unexpected argument: ${/'([^']+)'/.exec(e.message)?.[1] ?? e.message}`;
  return e.message.split("\n")[0]!;
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], streams: Streams): Promise<number> {
  const i = commandIndex(argv);
  const name = i === -1 ? undefined : argv[i];
  const rest = i === -1 ? argv : [...argv.slice(0, i), ...argv.slice(i + 1)];
  if (name === "help") {
    const about = COMMANDS.find((c) => c.name === rest.find((a) => !a.startsWith("-")));
    streams.stdout.write(about ? commandHelp(about) : mainHelp());
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  const usage = (message: string, help: string) => {
    streams.stderr.write(`${message}\n\n${help}`);
    return EXIT.usage;
  };
  /** A usage error of one command: the problem, the command's usage line, where to read more. */
  const commandUsage = (message: string, c: Command) =>
    usage(message, `${usageLine(c)}\nRun \`council ${c.name} --help\` for its flags and an example.\n`);
  if (!command) {
    if (name === undefined && (argv.includes("--help") || argv.includes("-h"))) {
      streams.stdout.write(mainHelp());
      return EXIT.ok;
    }
    return usage(name === undefined ? "no command given" : `unknown command ${JSON.stringify(name)}`, mainHelp());
  }

  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: toParseArgs({ ...GLOBAL_FLAGS, ...command.flags }),
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] });
  } catch (err) {
    return commandUsage(parseError(err), command);
  }
  if (values.help) {
    streams.stdout.write(commandHelp(command));
    return EXIT.ok;
  }
  const [min, max] = command.positionals;
  if (positionals.length < min || positionals.length > max) {
    const what = positionals.length < min ? `council ${command.name} needs ${command.args}` : `unexpected argument: ${positionals[max]}`;
    return commandUsage(what, command);
  }
  const flags = values as GlobalFlags;
  if (flags.output !== undefined && flags.output !== "table" && flags.output !== "json") {
    return commandUsage(`-o: ${JSON.stringify(flags.output)} is not table or json`, command);
  }

  let ctx: Context | undefined;
  let signalled: HandledSignal | undefined;
  // The first Ctrl-C (or SIGTERM) ends streams and waits cleanly; a second one exits at once.
  const interrupt = (signal: HandledSignal) => {
    if (signalled) process.exit(128 + SIGNAL_NUMBERS[signal]);
    signalled = signal;
    ctx?.abort.abort();
  };
  process.on("SIGINT", interrupt);
  process.on("SIGTERM", interrupt);
  /** 128 + the signal's number after a signal (130 for Ctrl-C), as shells expect; else `code`. */
  const exitCode = (code: number) => (signalled && code === EXIT.interrupted ? 128 + SIGNAL_NUMBERS[signalled] : code);
  try {
    const timeoutMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout, "--timeout");
    ctx = new Context(flags, streams, timeoutMs);
    return exitCode(await command.run(ctx, values, positionals));
  } catch (err) {
    if (ctx?.abort.signal.aborted) return exitCode(EXIT.interrupted);
    const { message, code } = describeFailure(err, addrOf(flags, streams.env));
    if (streams.env.COUNCIL_DEBUG && err instanceof Error) streams.stderr.write(`${err.stack}\n`);
    if (code === EXIT.usage) return commandUsage(message, command);
    streams.stderr.write(`${message}\n`);
    return code;
  } finally {
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
    ctx?.close();
  }
}

/** Ends quietly when the reader of stdout goes away (`council watch | head -3`). */
function quietOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(EXIT.ok);
    throw err;
  });
}

export async function run(): Promise<void> {
  quietOnBrokenPipe(process.stdout);
  const streams = { stdout: process.stdout, stderr: process.stderr, env: process.env };
  const code = await main(process.argv.slice(2), streams).catch((err: unknown) => {
    // main answers every failure itself; this is the last line of defence against a stack trace.
    streams.stderr.write(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.error;
  });
  // Writes to pipes, files and terminals are synchronous on Linux and macOS, so exiting now loses
  // no output; it also ends any timer or channel a failed call left behind.
  process.exit(code);
}
