import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTar } from '../../image/unpack/tar.js';
import { parseChanges } from '../images.js';
import { commitConfig, layerTar } from './commit.js';
import { walkChanges, type LayerChange } from './diff.js';

const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

test('commitConfig: the container’s config, changed by the lines, filled from the container under a given config', () => {
  const container = { Cmd: ['sh'], Env: ['PATH=/bin', 'A=1'], WorkingDir: '/w', Labels: { a: '1' }, ExposedPorts: { '80/tcp': {} }, Hostname: 'abc', Tty: true, User: '' };
  assert.deepEqual(commitConfig(container, undefined, parseChanges(['ENV A=2 B=3', 'LABEL b=2', 'EXPOSE 443', 'CMD ["echo", "hi"]', 'VOLUME /data', 'STOPSIGNAL SIGINT', 'USER nobody'])), {
    User: 'nobody',
    ExposedPorts: { '80/tcp': {}, '443/tcp': {} },
    Env: ['PATH=/bin', 'A=2', 'B=3'],
    Cmd: ['echo', 'hi'],
    Volumes: { '/data': {} },
    WorkingDir: '/w',
    Labels: { a: '1', b: '2' },
    StopSignal: 'SIGINT',
  });
  // Docker's `config` body replaces the base; what it leaves empty comes from the container.
  assert.deepEqual(commitConfig(container, { Env: ['X=1'], Entrypoint: ['/e'] }, parseChanges([])), {
    ExposedPorts: { '80/tcp': {} },
    Env: ['X=1', 'PATH=/bin', 'A=1'],
    Entrypoint: ['/e'],
    WorkingDir: '/w',
    Labels: { a: '1' },
  });
});

test('layerTar: entries with their parents first, hard links once, whiteouts as .wh. files', async () => {
  const upper = mkdtempSync(join(tmpdir(), 'berth-commit-'));
  temps.push(upper);
  mkdirSync(join(upper, 'etc'));
  writeFileSync(join(upper, 'etc', 'motd'), 'hello\n');
  linkSync(join(upper, 'etc', 'motd'), join(upper, 'etc', 'motd2'));
  symlinkSync('motd', join(upper, 'etc', 'link'));
  const changes: LayerChange[] = [...walkChanges({ upper, lowers: [] }), { path: '/etc/gone', kind: 2 }, { path: '/top-gone', kind: 2 }, { path: '/etc/hidden', kind: 2, underOpaque: true }];
  const seen: string[] = [];
  for await (const { entry, body } of readTar(layerTar(changes))) {
    const data: Buffer[] = [];
    for await (const c of body) data.push(c as Buffer);
    seen.push(`${entry.type} ${entry.name}${entry.linkname ? ` -> ${entry.linkname}` : ''}${data.length ? ` ${Buffer.concat(data).toString().trim()}` : ''}`);
  }
  assert.deepEqual(seen, ['dir etc/', 'symlink etc/link -> motd', 'file etc/motd hello', 'hardlink etc/motd2 -> etc/motd', 'file etc/.wh.gone', 'file .wh.top-gone']);
});
