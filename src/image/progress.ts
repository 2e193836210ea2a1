// Progress events of long image operations, shaped like the Docker API's JSON message
// stream (status, id, progressDetail) so that the engine can forward them unchanged.

export interface ProgressEvent {
  status: string;
  /** The object the event is about: a short layer id, a tag or a digest. */
  id?: string;
  current?: number;
  total?: number;
}

/** Docker's 12-hex-digit short form of a digest. */
export function shortId(digest: string): string {
  const hex = digest.slice(digest.indexOf(':') + 1);
  return hex.slice(0, 12);
}
