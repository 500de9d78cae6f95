/**
 * Reading a configuration document (a policy file, the auth file) parsed from YAML or JSON: each
 * read knows the path it is at, so that every refusal names where the problem is, e.g.
 * `reviewers[0].checks[1].if.risk_in[0]: "hgih" is not one of trivial, low, …`.
 */
type Json = unknown;

export class DocumentReader {
  /**
   * @param path where this reader is in the document ("" at the top)
   * @param refuse makes the error a refusal throws, from its whole message
   * @param top what the top of the document is called in messages ("policy", "auth file")
   */
  constructor(
    readonly path: string,
    private readonly refuse: (message: string) => Error,
    private readonly top: string,
  ) {}

  fail(message: string): never {
    throw this.refuse(`${this.path || this.top}: ${message}`);
  }

  at(key: string | number): DocumentReader {
    const path = typeof key === "number" ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key;
    return new DocumentReader(path, this.refuse, this.top);
  }

  /** An object whose keys are all `allowed`. */
  object(value: Json, allowed: readonly string[]): Record<string, Json> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail("must be an object");
    const record = value as Record<string, Json>;
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) this.at(key).fail(`unknown field (expected one of: ${allowed.join(", ")})`);
    }
    return record;
  }

  number(value: Json, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isFinite(value)) this.fail("must be a number");
    if (value < min || value > max) this.fail(`must be between ${min} and ${max}`);
    return value;
  }

  integer(value: Json, min: number, max: number): number {
    const n = this.number(value, min, max);
    if (!Number.isInteger(n)) this.fail("must be a whole number");
    return n;
  }

  boolean(value: Json): boolean {
    if (typeof value !== "boolean") this.fail("must be true or false");
    return value;
  }

  string(value: Json, options: { nonEmpty?: boolean } = {}): string {
    if (value === undefined || value === null) this.fail("is required");
    if (typeof value !== "string") this.fail("must be a string");
    if (options.nonEmpty && value.trim() === "") this.fail("must not be empty");
    return value;
  }

  list<T>(value: Json, item: (r: DocumentReader, v: Json) => T): T[] {
    if (value === undefined || value === null) this.fail("is required");
    if (!Array.isArray(value)) this.fail("must be a list");
    return value.map((v, i) => item(this.at(i), v));
  }

  oneOf<T extends string>(value: Json, choices: readonly T[]): T {
    if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
      this.fail(`${JSON.stringify(value)} is not one of ${choices.join(", ")}`);
    }
    return value as T;
  }
}
