// berth's own CLI against a private berthd: run (foreground, detached, --rm, stdin), exit
// codes (the container's, 125/126/127), ps/logs/exec/inspect/top/stats, stop/kill/rm, cp both
// ways, volumes, images (import, tag, save/load, rmi), prune. Root; only this test's objects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerthd, berthdSkipReason, BERTH_CLI, type Berthd } from './helpers/berthd.js';
import { makeRootfs } from './helpers/bundle.js';
import { runCommand, show, waitFor, type RunResult } from './helpers/runtime.js';
import { registryUnavailable, startRegistry } from './helpers/registry.js';

const skip = berthdSkipReason();
const IMAGE = 'berth-cli/busybox:1';
let d: Berthd;
let work: string;

/** berth against this test's berthd; BERTH_AUTOSTART=0 so a dead berthd is never replaced by one on the host's roots. */
function berth(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return runCommand(process.execPath, [BERTH_CLI, ...args], work, {
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 60_000,
    env: { ...process.env, BERTH_HOST: `unix://${d.socket}`, BERTH_AUTOSTART: '0', HOME: work },
    cwd: work,
  });
}

/** A pty driver: runs argv on a 33x101 terminal, types each input a second apart, returns the screen and status. */
const PTY_DRIVER = `
import os, pty, sys, time, select, struct, fcntl, termios, json, signal
argv = json.loads(sys.argv[1]); pending = json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(argv[0], argv, os.environ)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 101, 0, 0))
out = b''; deadline = time.time() + 30; last = time.time()
while time.time() < deadline:
    if pending and time.time() - last > 1.0:
        os.write(fd, pending.pop(0).encode('latin1')); last = time.time()
    r, _, _ = select.select([fd], [], [], 0.1)
    if fd in r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d: break
        out += d
wpid, status = os.waitpid(pid, os.WNOHANG)
if wpid == 0:
    os.kill(pid, signal.SIGKILL); _, status = os.waitpid(pid, 0)
print(json.dumps({'out': out.decode('latin1'), 'code': os.waitstatus_to_exitcode(status)}))
`;

async function berthOnTty(args: string[], inputs: string[]): Promise<{ out: string; code: number }> {
  const driver = join(work, 'pty-driver.py');
  writeFileSync(driver, PTY_DRIVER);
  const r = await runCommand('/usr/bin/python3', [driver, JSON.stringify([process.execPath, BERTH_CLI, ...args]), JSON.stringify(inputs)], work, {
    timeoutMs: 60_000,
    env: { ...process.env, BERTH_HOST: `unix://${d.socket}`, BERTH_AUTOSTART: '0' },
  });
  assert.equal(r.code, 0, show(r));
  return JSON.parse(r.stdout) as { out: string; code: number };
}

function noWarnings(text: string): string {
  return text.replace(/^WARNING: .*\n/gm, '');
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-cli-'));
  const rootfs = join(work, 'rootfs');
  makeRootfs(rootfs);
  execFileSync('tar', ['-C', rootfs, '-cf', join(work, 'rootfs.tar'), '.']);
  d = await startBerthd({ label: 'cli' });
  const r = await berth(['import', '--change', 'CMD ["/bin/sh"]', join(work, 'rootfs.tar'), IMAGE]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
});

after(async () => {
  if (skip) return;
  const problems = await d.stop();
  rmSync(work, { recursive: true, force: true });
  assert.deepEqual(problems, []);
});

test('version, info and images', { skip }, async () => {
  const v = await berth(['version', '--format', '{{.Server.Version}}']);
  assert.equal(v.code, 0, show(v));
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  const i = await berth(['info']);
  assert.match(i.stdout, /^ Storage Driver: overlay$/m);
  const im = await berth(['images']);
  assert.match(im.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\nberth-cli\/busybox\s+1\s+[0-9a-f]{12}\s+.* ago\s+\d/);
});

test('run in the foreground: output, the container exit code, --rm', { skip }, async () => {
  const r = await berth(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.equal(noWarnings(r.stderr), 'err\n');
  const ps = await berth(['ps', '-aq']);
  assert.equal(ps.stdout, '', 'the --rm container is gone');
});

test('run -i passes stdin; missing commands exit 127, not executable 126, bad flags 125', { skip }, async () => {
  const r = await berth(['run', '--rm', '-i', '--network', 'none', IMAGE, 'sh', '-c', 'read l; echo "got $l"'], { input: 'hello\n' });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'got hello\n');
  const nf = await berth(['run', '--rm', '--network', 'none', IMAGE, '/no/such/thing']);
  assert.equal(nf.code, 127, show(nf));
  const ne = await berth(['run', '--rm', '--network', 'none', IMAGE, '/etc/passwd']);
  assert.equal(ne.code, 126, show(ne));
  const bad = await berth(['run', '--nope', IMAGE]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^unknown flag: --nope\n/);
  const missing = await berth(['run', '--pull', 'never', 'no-such-image:1']);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /^berth: Error response from daemon: .*no-such-image/);
});

test('detached container: ps, logs, exec, top, stats, inspect, stop, wait, rm', { skip }, async () => {
  const r = await berth(['run', '-d', '--name', 'cli-web', '--network', 'none', IMAGE, 'sh', '-c', 'echo started; trap "exit 7" TERM; while true; do sleep 0.2; done']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ps = await berth(['ps', '--format', '{{.ID}} {{.Names}} {{.State}}']);
  assert.equal(ps.stdout, `${id.slice(0, 12)} cli-web running\n`);
  await waitFor('the log line', async () => ((await berth(['logs', 'cli-web'])).stdout === 'started\n' ? true : undefined));
  const ex = await berth(['exec', '-e', 'X=42', 'cli-web', 'sh', '-c', 'echo $X; exit 4']);
  assert.equal(ex.code, 4, show(ex));
  assert.equal(ex.stdout, '42\n');
  const top = await berth(['top', 'cli-web']);
  assert.match(top.stdout, /^UID\s+PID\s+PPID/);
  const st = await berth(['stats', '--no-stream', 'cli-web']);
  assert.equal(st.code, 0, show(st));
  assert.match(st.stdout, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS\n[0-9a-f]{12}\s+cli-web\s+\d+\.\d\d%/);
  const insp = await berth(['inspect', '-f', '{{.State.Status}} {{.Name}} {{json .Config.Cmd}}', 'cli-web']);
  assert.equal(insp.stdout, `running /cli-web ["sh","-c","echo started; trap \\"exit 7\\" TERM; while true; do sleep 0.2; done"]\n`);
  const stop = await berth(['stop', '-t', '10', 'cli-web']);
  assert.equal(stop.stdout, 'cli-web\n', show(stop));
  const wait = await berth(['wait', 'cli-web']);
  assert.equal(wait.stdout, '7\n');
  const psa = await berth(['ps', '-a', '--filter', 'name=cli-web', '--format', '{{.Status}}']);
  assert.match(psa.stdout, /^Exited \(7\) .* ago\n$/);
  const rm = await berth(['rm', 'cli-web', 'cli-nothing']);
  assert.equal(rm.code, 1);
  assert.equal(rm.stdout, 'cli-web\n');
  assert.match(rm.stderr, /^Error response from daemon: .*cli-nothing/);
});

test('cp both ways and volumes', { skip }, async () => {
  const r = await berth(['run', '-d', '--name', 'cli-cp', '--network', 'none', '-v', 'cli-vol:/data', IMAGE, 'sleep', '1000']);
  assert.equal(r.code, 0, show(r));
  const src = join(work, 'tree');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'sub', 'f.txt'), 'content\n');
  const up = await berth(['cp', src, 'cli-cp:/tmp']);
  assert.equal(up.code, 0, show(up));
  const cat = await berth(['exec', 'cli-cp', 'cat', '/tmp/tree/sub/f.txt']);
  assert.equal(cat.stdout, 'content\n');
  const down = await berth(['cp', 'cli-cp:/tmp/tree', join(work, 'back')]);
  assert.equal(down.code, 0, show(down));
  assert.equal(readFileSync(join(work, 'back', 'sub', 'f.txt'), 'utf8'), 'content\n');
  const file = await berth(['cp', 'cli-cp:/etc/hostname', join(work, 'hn')]);
  assert.equal(file.code, 0, show(file));
  assert.ok(existsSync(join(work, 'hn')));
  const vl = await berth(['volume', 'ls', '--format', '{{.Name}}']);
  assert.match(vl.stdout, /^cli-vol$/m);
  const inuse = await berth(['volume', 'rm', 'cli-vol']);
  assert.equal(inuse.code, 1);
  assert.equal((await berth(['rm', '-f', 'cli-cp'])).code, 0);
  const gone = await berth(['volume', 'rm', 'cli-vol']);
  assert.equal(gone.code, 0, show(gone));
});

test('images: tag, save, rmi, load', { skip }, async () => {
  assert.equal((await berth(['tag', IMAGE, 'berth-cli/copy:2'])).code, 0);
  const tar = join(work, 'save.tar');
  const s = await berth(['save', '-o', tar, 'berth-cli/copy:2']);
  assert.equal(s.code, 0, show(s));
  const rmi = await berth(['rmi', 'berth-cli/copy:2']);
  assert.equal(rmi.stdout, 'Untagged: berth-cli/copy:2\n', show(rmi));
  const l = await berth(['load', '-i', tar]);
  assert.equal(l.code, 0, show(l));
  assert.match(l.stdout, /Loaded image: berth-cli\/copy:2/);
  assert.equal((await berth(['rmi', 'berth-cli/copy:2'])).code, 0);
});

test('container prune removes stopped containers', { skip }, async () => {
  const r = await berth(['run', '--name', 'cli-pruned', '--network', 'none', IMAGE, 'true']);
  assert.equal(r.code, 0, show(r));
  const p = await berth(['container', 'prune', '-f']);
  assert.equal(p.code, 0, show(p));
  assert.match(p.stdout, /^Deleted Containers:\n[0-9a-f]{64}\n/);
  assert.equal((await berth(['ps', '-aq', '--filter', 'name=cli-pruned'])).stdout, '');
});

test('push and pull through a local registry with credentials from the docker config', { skip: skip || registryUnavailable() || false }, async () => {
  const reg = await startRegistry({ auth: 'htpasswd', users: { alice: 'secret' } });
  try {
    mkdirSync(join(work, '.docker'), { recursive: true });
    writeFileSync(join(work, '.docker', 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:secret').toString('base64') } } }));
    const ref = `${reg.host}/cli/bb:1`;
    assert.equal((await berth(['tag', IMAGE, ref])).code, 0);
    const push = await berth(['push', ref]);
    assert.equal(push.code, 0, show(push) + reg.log());
    assert.doesNotMatch(push.stdout, /\x1b\[/, 'no cursor moves without a terminal');
    assert.equal((await berth(['rmi', ref])).code, 0);
    const pull = await berth(['pull', ref]);
    assert.equal(pull.code, 0, show(pull) + reg.log());
    assert.match(pull.stdout, new RegExp(`\\n${reg.host.replace(/\./g, '\\.')}/cli/bb:1\\n$`));
    const img = await berth(['images', '--format', '{{.Repository}}:{{.Tag}}', `${reg.host}/cli/bb`]);
    assert.ok(img.stdout.split('\n').includes(ref), img.stdout);
    assert.equal((await berth(['rmi', ref])).code, 0);
    writeFileSync(join(work, '.docker', 'config.json'), '{}');
    const denied = await berth(['pull', ref]);
    assert.equal(denied.code, 1, show(denied));
  } finally {
    await reg.stop();
  }
});

test('run -it on a terminal: the size is passed, the exit code returned; ctrl-p ctrl-q detaches', { skip: skip || (existsSync('/usr/bin/python3') ? false : 'no python3 for the pty driver') }, async () => {
  const r = await berthOnTty(['run', '-it', '--rm', '--network', 'none', IMAGE, 'sh'], ['stty size\r', 'exit 6\r']);
  assert.equal(r.code, 6, r.out);
  assert.match(r.out, /33 101/);
  const det = await berthOnTty(['run', '-it', '--name', 'cli-tty', '--network', 'none', IMAGE, 'sh'], ['echo hi\r', '\u0010\u0011']);
  assert.equal(det.code, 0, det.out);
  const ps = await berth(['ps', '--filter', 'name=cli-tty', '--format', '{{.State}}']);
  assert.equal(ps.stdout, 'running\n', 'the container keeps running after the detach');
  const ex = await berthOnTty(['exec', '-it', 'cli-tty', 'sh', '-c', 'stty size; exit 3'], []);
  assert.equal(ex.code, 3, ex.out);
  assert.match(ex.out, /33 101/);
  assert.equal((await berth(['rm', '-f', 'cli-tty'])).code, 0);
});
