// The one error type every layer throws for expected failures. Adapters (CLI, HTTP, gRPC)
// map `code` to an exit status or protocol status at the edge; plain Error means a bug.

export type ErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'Conflict'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'Internal';

export interface BerthErrorOptions {
  cause?: unknown;
  hint?: string;
}

export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  /** Errors from cleanup that ran after this error; attached, never replacing it. */
  readonly cleanupErrors: unknown[] = [];

  constructor(code: ErrorCode, message: string, options: BerthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.code = code;
    this.hint = options.hint;
  }

  /** The message with the hint, as a user should read it. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

export function isBerthError(err: unknown, code?: ErrorCode): err is BerthError {
  return err instanceof BerthError && (code === undefined || err.code === code);
}

/** Records a cleanup failure on the original error instead of losing either. */
export function attachCleanupError(original: unknown, cleanupError: unknown): void {
  if (original instanceof BerthError) original.cleanupErrors.push(cleanupError);
  else if (original instanceof Error) {
    const list = ((original as Error & { cleanupErrors?: unknown[] }).cleanupErrors ??= []);
    list.push(cleanupError);
  }
}
