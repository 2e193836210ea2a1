// One constructor for the InvalidArgument errors of this folder, so every refusal names
// the request field (`HostConfig.Memory`) the user has to change.
import { BerthError } from '../../errors.js';

export function invalid(field: string, message: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', `${field}: ${message}`, hint === undefined ? {} : { hint });
}

/** A field berth does not implement: refused by name, never silently ignored. */
export function unsupported(field: string, what: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', `${field}: ${what} is not supported by berth`, hint === undefined ? {} : { hint });
}
