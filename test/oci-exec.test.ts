// exec into a running container: args, --process, -e, --cwd, -u, --cap, --detach, --pid-file,
// exit codes, and a terminal through --console-socket (also for create).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Suite, capNames, type ProbeReport } from './helpers/suite.js';
import { show, waitFor } from './helpers/runtime.js';
import type { Bundle } from './helpers/bundle.js';
import { haveConsoleHelper, receiveConsole } from './helpers/tty.js';

const s = new Suite('exec');
const rt = s.rt;
let b: Bundle;
let id: string;

before(async () => {
  b = s.bundle({ args: ['/probe', 'sleep', '300'], edit: (sp) => (sp.process!.env = ['PATH=/bin', 'FROM_CONFIG=1']) });
  id = s.id();
  const r = await rt.run(id, b.dir, { detach: true });
  assert.equal(r.code, 0, show(r));
});
after(() => s.assertClean());

async function execReport(extra: Parameters<typeof rt.exec>[2] = {}, args: string[] = []): Promise<ProbeReport> {
  const r = await rt.exec(id, ['/probe', 'report', ...args], extra);
  assert.equal(r.code, 0, show(r));
  return JSON.parse(r.stdout) as ProbeReport;
}

test('exec runs in the container namespaces with the config env', async () => {
  const initPid = (await rt.state(id)).pid;
  const report = await execReport();
  for (const n of ['mnt', 'net', 'ipc', 'uts', 'pid', 'cgroup']) {
    assert.equal(report.namespaces[n], readlinkSync(`/proc/${initPid}/ns/${n}`), `${n} joined`);
  }
  assert.ok(report.env.includes('FROM_CONFIG=1'));
  assert.notEqual(report.pid, 1);
  assert.equal(report.cwd, '/');
});

test('exec passes stdout, stderr, stdin and the exit code', async () => {
  const r = await rt.exec(id, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(r.code, 7, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.match(r.stderr, /err/);
  const c = await rt.exec(id, ['/probe', 'cat'], { input: 'piped\n' });
  assert.equal(c.stdout, 'piped\n', show(c));
});

test('exec -e, --cwd, -u uid:gid', async () => {
  const report = await execReport({ envVars: ['FOO=bar', 'FROM_CONFIG=2'], cwdInside: '/tmp', user: '1000:1000' });
  assert.ok(report.env.includes('FOO=bar'));
  assert.ok(report.env.includes('FROM_CONFIG=2'), '-e overrides the config env');
  assert.equal(report.cwd, '/tmp');
  assert.equal(report.uid, 1000);
  assert.equal(report.gid, 1000);
});

test('exec --cap adds a capability', async () => {
  const report = await execReport({ caps: ['CAP_SYS_ADMIN'] });
  assert.ok(capNames(report.capabilities.effective).includes('CAP_SYS_ADMIN'), capNames(report.capabilities.effective).join(','));
  assert.ok(capNames(report.capabilities.bounding).includes('CAP_SYS_ADMIN'));
  const plain = await execReport();
  assert.ok(!capNames(plain.capabilities.effective).includes('CAP_SYS_ADMIN'));
});

test('exec --process FILE', async () => {
  const file = join(b.dir, 'process.json');
  writeFileSync(
    file,
    JSON.stringify({
      terminal: false,
      user: { uid: 1000, gid: 1000, additionalGids: [2000] },
      args: ['/probe', 'report', '--read', '/etc/hostname'],
      env: ['PATH=/bin', 'ONLY=process'],
      cwd: '/home/user',
      capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL'] },
      noNewPrivileges: true,
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }],
    }),
  );
  const r = await rt.exec(id, [], { processFile: file });
  assert.equal(r.code, 0, show(r));
  const report = JSON.parse(r.stdout) as ProbeReport;
  assert.deepEqual(report.argv, ['/probe', 'report', '--read', '/etc/hostname']);
  assert.ok(report.env.includes('ONLY=process'));
  assert.ok(!report.env.includes('FROM_CONFIG=1'), 'the process file replaces the env');
  assert.equal(report.cwd, '/home/user');
  assert.equal(report.uid, 1000);
  assert.ok(report.groups.includes(2000));
  assert.deepEqual(capNames(report.capabilities.effective), ['CAP_KILL']);
  assert.equal(report.noNewPrivs, 1);
  assert.deepEqual(report.rlimits['RLIMIT_NOFILE'], { soft: 100, hard: 200 });
});

test('exec --detach --pid-file', async () => {
  const pidFile = join(b.dir, 'exec.pid');
  const out = join(b.rootfs, 'tmp', 'detached.json');
  const r = await rt.exec(id, ['/probe', 'report', '--out', '/tmp/detached.json', '--sleep', '2'], { detach: true, pidFile });
  assert.equal(r.code, 0, show(r));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(pid > 0);
  const report = await waitFor('detached exec report', () => {
    try {
      return JSON.parse(readFileSync(out, 'utf8')) as ProbeReport;
    } catch {
      return undefined;
    }
  });
  assert.equal(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)![1]!.split(/\s+/).pop(), String(report.pid));
  const ps = await rt.cmd(['ps', '--format', 'json', id]);
  assert.ok((JSON.parse(ps.stdout) as number[]).includes(pid), 'ps lists the exec process');
});

test('exec of a missing binary fails; exec into unknown or stopped containers fails', async () => {
  const r = await rt.exec(id, ['/no/such/exe']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\/no\/such\/exe/);
  const u = await rt.exec('bt-no-such-container', ['/bin/true']);
  assert.notEqual(u.code, 0);
  const sb = s.bundle({ args: ['/bin/true'] });
  const sid = s.id('stopped');
  assert.equal((await rt.run(sid, sb.dir, { detach: true })).code, 0);
  await rt.waitStatus(sid, 'stopped');
  const st = await rt.exec(sid, ['/bin/true']);
  assert.notEqual(st.code, 0, 'exec into a stopped container fails');
  assert.equal((await rt.delete(sid)).code, 0);
});

test('exec --tty with --console-socket', async (t) => {
  if (!haveConsoleHelper()) return t.skip('python3 is needed for the console-socket receiver');
  const sock = join(b.dir, 'exec-console.sock');
  const rx = receiveConsole(sock);
  await rx.ready;
  const r = await rt.exec(id, ['/bin/sh', '-c', 'tty; echo hello-tty'], { tty: true, detach: true, consoleSocket: sock });
  if (r.code !== 0) rx.kill();
  assert.equal(r.code, 0, show(r));
  const got = await rx.done;
  assert.match(got.output, /\/dev\/pts\/\d+/);
  assert.match(got.output, /hello-tty/);
});

test('create with terminal: true sends the pty master to --console-socket; consoleSize applies', async (t) => {
  if (!haveConsoleHelper()) return t.skip('python3 is needed for the console-socket receiver');
  const tb = s.bundle({
    args: ['/bin/sh', '-c', 'stty size; tty; read line; echo got:$line'],
    edit: (sp) => {
      sp.process!.terminal = true;
      sp.process!.consoleSize = { height: 33, width: 111 };
    },
  });
  const tid = s.id('tty');
  const sock = join(tb.dir, 'console.sock');
  const rx = receiveConsole(sock, 'typed\n');
  await rx.ready;
  const c = await rt.create(tid, tb.dir, { consoleSocket: sock });
  if (c.code !== 0) rx.kill();
  assert.equal(c.code, 0, show(c));
  assert.equal((await rt.start(tid)).code, 0);
  const got = await rx.done;
  assert.match(got.output, /33 111/);
  assert.match(got.output, /\/dev\/pts\/0/);
  assert.match(got.output, /got:typed/);
  await rt.waitStatus(tid, 'stopped');
  assert.equal((await rt.delete(tid)).code, 0);
});
