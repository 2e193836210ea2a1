// Pull/push/load progress as the docker CLI shows it (jsonmessage): on a terminal one line per
// layer, redrawn in place with ANSI cursor moves; otherwise one plain line per status change
// (progress-bar updates are left out so logs stay readable).
import type { ProgressMessage } from '../../engine/types.js';
import type { Readable, Writable } from 'node:stream';
import { jsonLines } from './client.js';
import { CliError } from './context.js';
import { humanSize } from './format.js';

/** docker's JSONProgress.String(): `[=====>     ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number, width = 50): string {
  if (total <= 0) return current > 0 ? humanSize(current) : '';
  const filled = Math.max(0, Math.min(width, Math.floor((current / total) * width)));
  const arrow = filled < width ? '>' : '';
  const bar = `[${'='.repeat(filled)}${arrow}${' '.repeat(Math.max(0, width - filled - arrow.length))}]`;
  return `${bar} ${`${humanSize(current)}`.padStart(8)}/${humanSize(total)}`;
}

function progressText(m: ProgressMessage): string {
  if (m.progress) return m.progress;
  const d = m.progressDetail;
  if (d && (d.current !== undefined || d.total !== undefined)) return progressBar(d.current ?? 0, d.total ?? 0);
  return '';
}

function hasProgress(m: ProgressMessage): boolean {
  return progressText(m) !== '';
}

export class ProgressPrinter {
  private readonly lines = new Map<string, number>();
  private count = 0;

  constructor(
    private readonly out: Writable,
    private readonly tty: boolean,
  ) {}

  handle(m: ProgressMessage): void {
    if (m.errorDetail || m.error) throw new CliError(m.errorDetail?.message ?? m.error ?? 'unknown error');
    if (m.aux) return;
    if (m.stream !== undefined) {
      this.out.write(m.stream);
      return;
    }
    const text = `${m.id ? `${m.id}: ` : ''}${m.status ?? ''}${hasProgress(m) ? ` ${progressText(m)}` : ''}`;
    if (!this.tty) {
      if (!hasProgress(m)) this.out.write(`${text}\n`);
      return;
    }
    if (!m.id) {
      this.out.write(`${text}\n`);
      this.lines.clear();
      this.count = 0;
      return;
    }
    const line = this.lines.get(m.id);
    if (line === undefined) {
      this.lines.set(m.id, this.count++);
      this.out.write(`\x1b[2K\r${text}\n`);
      return;
    }
    const up = this.count - line;
    this.out.write(`\x1b[${up}A\x1b[2K\r${text}\x1b[${up}B\r`);
  }
}

/** Prints a progress stream to `out`; throws the stream's own error if it carries one. */
export async function printProgress(res: Readable, out: Writable & { isTTY?: boolean }, opts: { quiet?: boolean } = {}): Promise<ProgressMessage[]> {
  const printer = new ProgressPrinter(out, out.isTTY === true);
  const all: ProgressMessage[] = [];
  for await (const m of jsonLines<ProgressMessage>(res)) {
    all.push(m);
    if (opts.quiet) {
      if (m.errorDetail || m.error) throw new CliError(m.errorDetail?.message ?? m.error ?? 'unknown error');
      continue;
    }
    printer.handle(m);
  }
  return all;
}

/** An image reference split as POST /images/create wants it (fromImage, tag). */
export function splitReference(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { name: ref.slice(0, at), digest: ref.slice(at + 1) };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref };
}

/** docker's TagNameOnly for messages: `busybox` → `busybox:latest`. */
export function withDefaultTag(ref: string): string {
  const r = splitReference(ref);
  return r.tag || r.digest ? ref : `${ref}:latest`;
}

/** The fully qualified form docker prints after a pull: docker.io/library/busybox:latest. */
export function fullyQualified(ref: string): string {
  const r = splitReference(withDefaultTag(ref));
  let name = r.name;
  const first = name.split('/')[0];
  const hasDomain = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) name = `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  return r.digest ? `${name}@${r.digest}` : `${name}:${r.tag}`;
}
