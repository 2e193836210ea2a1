// Output habits shared by the commands: inspect's JSON arrays and templates, one line per
// object acted on (errors per object, status 1 at the end), and prune's confirmation prompt.
import type { Context } from './context.js';
import { CliError } from './context.js';
import { parseTemplate, renderTemplate } from './template.js';
import { unescapeFormat } from './format.js';

/** docker inspect's output: a JSON array indented by 4, or the template once per object. */
export function formatInspect(objects: unknown[], format?: string): string {
  if (!format || format === 'json') return `${JSON.stringify(objects, null, 4)}\n`;
  const tpl = parseTemplate(unescapeFormat(format));
  return objects.map((o) => `${renderTemplate(tpl, o)}\n`).join('');
}

/**
 * Runs `fn` for each name in order (as docker does), printing what it returns on stdout and
 * each failure on stderr; exits 1 if any failed.
 */
export async function forEachName(ctx: Context, names: string[], fn: (name: string) => Promise<string | undefined>): Promise<number> {
  let failed = false;
  for (const n of names) {
    try {
      const line = await fn(n);
      if (line !== undefined) ctx.stdout.write(`${line}\n`);
    } catch (e) {
      failed = true;
      const err = e as Error;
      if (err.name === 'DaemonError') ctx.stderr.write(`Error response from daemon: ${err.message}\n`);
      else if (err.name === 'ConnectError') throw e;
      else ctx.stderr.write(`${err.message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** `Are you sure you want to continue? [y/N]` on stdin; anything but y/yes declines. */
export async function confirm(ctx: Context, warning: string): Promise<boolean> {
  ctx.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const line = await readLine(ctx);
  return /^\s*y(es)?\s*$/i.test(line);
}

async function readLine(ctx: Context): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.slice(0, nl));
    };
    const finish = (s: string): void => {
      ctx.stdin.off('data', onData);
      ctx.stdin.off('end', onEnd);
      ctx.stdin.pause();
      resolve(s);
    };
    const onEnd = (): void => finish(buf);
    ctx.stdin.on('data', onData);
    ctx.stdin.once('end', onEnd);
  });
}

export function declined(): CliError {
  return new CliError('', { exitCode: 0 });
}

/**
 * A name or reference as a path segment. Image references keep their `/`, `:` and `@` (the
 * API routes `/images/{name}/json` with slashes, as the docker CLI sends them); anything that
 * would end or change the path (`?`, `#`, `%`, spaces) is escaped.
 */
export function enc(name: string): string {
  return encodeURIComponent(name).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/g, '@');
}
