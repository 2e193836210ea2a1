// Finds what a network test left behind in the host's namespace: links with the test's name
// prefixes, network namespace pins (files and nsfs mounts) under the test's dirs, and nft
// tables or the rules/elements in them that mention the test's objects. Read-only, like
// leaks.ts; `reapNetLeaks` then removes links and pins so one failure does not poison the
// next test. nft leaks are only reported: a shared table is not the test's to delete.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface NetLeakScope {
  /** Link name prefixes the test owns (its bridge, its veth host ends). */
  linkPrefixes?: string[];
  /** Links matching a prefix that are expected to exist (e.g. a bridge kept on purpose). */
  expectLinks?: string[];
  /** Dirs holding the test's netns pins: any file or nsfs mount left there is a leak. */
  netnsDirs?: string[];
  /**
   * nft tables to look at: without `mentions` the table must not exist; with it, no line of
   * the table may contain any of those strings (bridge names, container addresses, ports).
   */
  nftTables?: { family: string; name: string; mentions?: string[] }[];
}

export interface NetLeak {
  kind: 'link' | 'netns' | 'nft';
  what: string;
  /** link: its name; netns: the pin path; nft: "family name". */
  key: string;
}

function hostLinks(): string[] {
  return readdirSync('/sys/class/net');
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** nsfs mount points under dir, from this process's mount table. */
export function nsfsMountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const fstype = fields[fields.indexOf('-') + 1];
    const mountPoint = unescapeMount(fields[4] ?? '');
    if (fstype === 'nsfs' && under(mountPoint, dir) && mountPoint !== dir) out.push(mountPoint);
  }
  return out;
}

function nftTable(family: string, name: string): string | undefined {
  try {
    return execFileSync('nft', ['list', 'table', family, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '');
    if (/No such file or directory/.test(stderr)) return undefined;
    throw err;
  }
}

/** Everything in scope the test left behind. Empty when clean. */
export function netLeaks(scope: NetLeakScope): NetLeak[] {
  const leaks: NetLeak[] = [];
  const prefixes = scope.linkPrefixes ?? [];
  for (const name of hostLinks()) {
    if (prefixes.some((p) => name.startsWith(p)) && !(scope.expectLinks ?? []).includes(name)) {
      leaks.push({ kind: 'link', what: `link ${name} remains in the host namespace`, key: name });
    }
  }
  for (const dir of scope.netnsDirs ?? []) {
    const seen = new Set<string>();
    for (const mp of nsfsMountsUnder(dir)) {
      seen.add(mp);
      leaks.push({ kind: 'netns', what: `netns pin mounted at ${mp}`, key: mp });
    }
    let files: string[] = [];
    try {
      files = readdirSync(dir);
    } catch {
      // no dir, no pins
    }
    for (const f of files) {
      const p = join(dir, f);
      if (!seen.has(p)) leaks.push({ kind: 'netns', what: `pin file ${p} remains`, key: p });
    }
  }
  for (const t of scope.nftTables ?? []) {
    const text = nftTable(t.family, t.name);
    if (text === undefined) continue;
    const key = `${t.family} ${t.name}`;
    if (!t.mentions) {
      leaks.push({ kind: 'nft', what: `nft table ${key} remains`, key });
      continue;
    }
    for (const line of text.split('\n')) {
      const hit = t.mentions.find((m) => line.includes(m));
      if (hit) leaks.push({ kind: 'nft', what: `nft table ${key} still mentions ${hit}: ${line.trim()}`, key });
    }
  }
  return leaks;
}

/** Best effort: deletes leaked links, unmounts and removes leaked pins. */
export function reapNetLeaks(leaks: NetLeak[]): void {
  for (const l of leaks) {
    try {
      if (l.kind === 'link') execFileSync('ip', ['link', 'delete', l.key], { stdio: 'ignore' });
      else if (l.kind === 'netns') {
        for (let i = 0; i < 8; i++) {
          try {
            execFileSync('umount', ['-l', l.key], { stdio: 'ignore' });
          } catch {
            break;
          }
        }
        rmSync(l.key, { force: true });
      }
    } catch {
      // already gone
    }
  }
}

export function describeNetLeaks(leaks: NetLeak[]): string {
  return leaks.map((l) => `${l.kind}: ${l.what}`).join('\n');
}
