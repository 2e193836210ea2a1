// The byte streams of attach, exec and logs: the 8-byte multiplexed frames of a container
// without a tty, and the detach key sequence (ctrl-p ctrl-q) read from the user's terminal.

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;

/**
 * Splits Docker's multiplexed stream: header [stream, 0, 0, 0, size (big-endian u32)],
 * then `size` bytes. Chunks may cut headers and payloads anywhere.
 */
export class FrameDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private stream = 0;

  constructor(private readonly onFrame: (stream: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, buf.length);
        this.onFrame(this.stream, buf.subarray(0, n));
        this.remaining -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (buf.length < 8) {
        this.pending = Buffer.from(buf);
        return;
      }
      this.stream = buf[0];
      this.remaining = buf.readUInt32BE(4);
      buf = buf.subarray(8);
    }
  }

  /** True when the stream ended in the middle of a frame. */
  get truncated(): boolean {
    return this.pending.length > 0 || this.remaining > 0;
  }
}

/** One multiplexed frame (tests and stdin forwarding never need it; the daemon writes them). */
export function encodeFrame(stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/**
 * Docker's detach keys: "ctrl-p,ctrl-q" → [0x10, 0x11]. Letters, `ctrl-a`…`ctrl-z`,
 * `ctrl-@`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`.
 */
export function parseDetachKeys(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const k = part.trim();
    if (k.length === 1) {
      out.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(k);
    if (!m) throw new Error(`Invalid detach keys (${spec}) provided: unknown character '${k}'`);
    const c = m[1];
    if (/[a-z]/i.test(c)) out.push(c.toLowerCase().charCodeAt(0) - 0x60);
    else {
      const special: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
      if (!(c in special)) throw new Error(`Invalid detach keys (${spec}) provided: unknown character 'ctrl-${c}'`);
      out.push(special[c]);
    }
  }
  return out;
}

/**
 * Watches the user's keystrokes for the detach sequence. Bytes that might begin it are held
 * back; if the sequence breaks off they are released with what follows.
 */
export class EscapeDetector {
  private held: number[] = [];
  constructor(private readonly keys: number[]) {}

  /** Returns the bytes to forward, and whether the sequence completed. */
  feed(chunk: Buffer): { forward: Buffer; detached: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held.length]) {
        this.held.push(b);
        if (this.held.length === this.keys.length) return { forward: Buffer.from(out), detached: true };
        continue;
      }
      out.push(...this.held);
      this.held = [];
      if (b === this.keys[0]) this.held.push(b);
      else out.push(b);
    }
    return { forward: Buffer.from(out), detached: false };
  }
}
