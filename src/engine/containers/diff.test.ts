// The change walk over plain directories posing as overlay layers (no root: whiteouts and
// opaque directories, which need mknod and trusted.* xattrs, are covered by
// test/engine-gaps.test.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hiddenPathsOf, walkChanges } from './diff.js';

const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function tree(files: Record<string, string | null>): string {
  const root = mkdtempSync(join(tmpdir(), 'berth-diff-'));
  temps.push(root);
  for (const [path, body] of Object.entries(files)) {
    const host = join(root, path);
    if (body === null) mkdirSync(host, { recursive: true });
    else {
      mkdirSync(join(host, '..'), { recursive: true });
      writeFileSync(host, body);
    }
  }
  return root;
}

const show = (changes: { path: string; kind: number }[]) => changes.map((c) => `${'CAD'[c.kind]} ${c.path}`);

test('added, modified, parents as modified, Docker’s order', () => {
  const lower = tree({ 'etc/passwd': 'root', 'usr/lib/x/y': 'y', 'a-b': 'f', a: null });
  const upper = tree({ 'etc/passwd': 'root+', 'usr/lib/x/new': 'n', 'a/b': 'added', 'a-b': 'g', 'new/deep/file': 'f' });
  // Copied-up directories keep the lower times: only their content makes them changes.
  for (const d of ['etc', 'usr', 'usr/lib', 'usr/lib/x', 'a']) {
    utimesSync(join(upper, d), 1_700_000_000, 1_700_000_000);
    utimesSync(join(lower, d), 1_700_000_000, 1_700_000_000);
  }
  assert.deepEqual(show(walkChanges({ upper, lowers: [lower] })), [
    'C /a',
    'A /a/b',
    'C /a-b',
    'C /etc',
    'C /etc/passwd',
    'A /new',
    'A /new/deep',
    'A /new/deep/file',
    'C /usr',
    'C /usr/lib',
    'C /usr/lib/x',
    'A /usr/lib/x/new',
  ]);
});

test('a directory changed only in its mode shows; an unchanged one with nothing in it does not', () => {
  const lower = tree({ srv: null, opt: null });
  const upper = tree({ srv: null, opt: null });
  utimesSync(join(lower, 'opt'), 1_700_000_000, 1_700_000_000);
  utimesSync(join(upper, 'opt'), 1_700_000_000, 1_700_000_000);
  chmodSync(join(lower, 'srv'), 0o755);
  chmodSync(join(upper, 'srv'), 0o700);
  assert.deepEqual(show(walkChanges({ upper, lowers: [lower] })), ['C /srv']);
});

test('a file in an upper layer of the image counts as existing; a symlink is not followed', () => {
  const bottom = tree({ 'bin/sh': 'sh' });
  const top = tree({ 'etc/motd': 'hi' });
  symlinkSync('/etc', join(top, 'link'));
  const upper = tree({ 'etc/motd': 'changed', 'bin/sh': 'sh2', 'link/passwd': 'x' });
  for (const d of ['etc', 'bin']) {
    for (const t of [bottom, top, upper]) {
      try {
        utimesSync(join(t, d), 1_700_000_000, 1_700_000_000);
      } catch {
        // not in this layer
      }
    }
  }
  // upper/link is a directory here while the image has a symlink: it replaced it (overlay would mark it opaque).
  assert.deepEqual(show(walkChanges({ upper, lowers: [top, bottom] })), ['C /bin', 'C /bin/sh', 'C /etc', 'C /etc/motd', 'C /link', 'A /link/passwd']);
});

test('berth’s own mount points (Docker’s init layer) are left out, the user’s are not', () => {
  const lower = tree({ etc: null, 'etc/passwd': 'x' });
  const upper = tree({ 'etc/hosts': '', 'etc/resolv.conf': '', proc: null, dev: null, 'sbin/docker-init': '', 'data/': null, 'run/secrets/x': 'x' });
  utimesSync(join(lower, 'etc'), 1_700_000_000, 1_700_000_000);
  const hidden = hiddenPathsOf(['/proc', '/dev', '/etc/hosts', '/etc/resolv.conf', '/sbin/docker-init', '/data'], ['/data']);
  assert.deepEqual(show(walkChanges({ upper, lowers: [lower] }, hidden)), ['A /data', 'A /run', 'A /run/secrets', 'A /run/secrets/x']);
});
