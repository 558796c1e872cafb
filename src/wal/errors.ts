/** The archive's error: a one-line reason, and whether trying again later may help. */
export class ArchiveError extends Error {
  /** Worth retrying later (the store is unreachable) vs. never going to work as is. */
  readonly transient: boolean;

  constructor(message: string, transient: boolean, cause?: unknown) {
    super(message, { cause });
    this.name = "ArchiveError";
    this.transient = transient;
  }
}
