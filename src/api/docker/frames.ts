// Docker's stream multiplexing: an 8-byte header [stream, 0, 0, 0, size uint32 BE] before each
// payload; stream 0 stdin, 1 stdout, 2 stderr. With a tty there is no framing at all.

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;

export function frame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Splits a framed byte stream back into frames (tests and clients); a partial tail is returned as rest. */
export function parseFrames(data: Buffer): { frames: { stream: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { stream: number; payload: Buffer }[] = [];
  let off = 0;
  while (data.length - off >= 8) {
    const size = data.readUInt32BE(off + 4);
    if (data.length - off - 8 < size) break;
    frames.push({ stream: data[off]!, payload: data.subarray(off + 8, off + 8 + size) });
    off += 8 + size;
  }
  return { frames, rest: data.subarray(off) };
}
