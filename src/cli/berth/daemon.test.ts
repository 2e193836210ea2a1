// Starting "berthd" when nothing listens: a stand-in daemon script (a tiny /_ping server) in a
// temp dir plays berthd, so no real daemon or root state is touched.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ping, startDaemon } from './daemon.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-daemon-'));
const pids: number[] = [];
after(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

const fakeBerthd = path.join(dir, 'fake-berthd.mjs');
writeFileSync(
  fakeBerthd,
  `import http from 'node:http';
const i = process.argv.indexOf('--host');
const sock = process.argv[i + 1].slice('unix://'.length);
console.log('fake berthd on ' + sock);
http.createServer((req, res) => res.end('OK')).listen(sock);
setTimeout(() => process.exit(0), 30000).unref();
process.on('SIGTERM', () => process.exit(0));
`,
);
const failingBerthd = path.join(dir, 'failing-berthd.mjs');
writeFileSync(failingBerthd, `console.error('cannot open /var/lib/berth: EACCES'); process.exit(3);\n`);

test('starts the daemon detached, waits for /_ping, says so', async () => {
  const socket = path.join(dir, 'd.sock');
  const logFile = path.join(dir, 'berthd.log');
  const said: string[] = [];
  await startDaemon({ socketPath: socket, berthdPath: fakeBerthd, logFile, notify: (m) => said.push(m), isRoot: true });
  assert.equal(await ping(socket), true);
  assert.match(said[0], /^berth: started berthd \(pid (\d+), log .*berthd\.log\)$/);
  pids.push(Number(/pid (\d+)/.exec(said[0])![1]));
  assert.match(readFileSync(logFile, 'utf8'), /fake berthd on .*d\.sock/);
});

test('a daemon that exits at once is reported with its log', async () => {
  await assert.rejects(
    startDaemon({ socketPath: path.join(dir, 'e.sock'), berthdPath: failingBerthd, logFile: path.join(dir, 'fail.log'), notify: () => {}, isRoot: true }),
    /berthd exited with status 3 right after starting \(log: .*fail\.log\):\ncannot open \/var\/lib\/berth: EACCES/,
  );
});

test('not root: a hint instead of a start', async () => {
  await assert.rejects(startDaemon({ socketPath: path.join(dir, 'n.sock'), berthdPath: fakeBerthd, notify: () => {}, isRoot: false }), (e: Error & { hint?: string }) => {
    assert.match(e.message, /Cannot connect to berthd at unix:\/\/.*n\.sock/);
    assert.match(e.hint ?? '', /start it as root/);
    return true;
  });
});
