/**
 * A string that never prints itself: logs, JSON, `Deno.inspect` and template strings all show
 * `[redacted]`. Call `reveal()` at the one place that must hand the value on.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[redacted]";
  }

  toJSON(): string {
    return "[redacted]";
  }

  [Symbol.for("Deno.customInspect")](): string {
    return "[redacted]";
  }
}
