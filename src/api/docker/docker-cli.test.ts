// The real docker CLI against the API and a fake engine: the best check of the shapes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeEngine } from './fake-engine.js';
import { startDockerApi, type DockerApi } from './index.js';

const CLIS = [
  { bin: '/usr/local/bin/docker', name: 'docker CLI 28' },
  { bin: '/usr/bin/docker', name: "Debian's docker 20.10" },
];

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

for (const cli of CLIS) {
  describe(`${cli.name} against the API`, () => {
    let dir: string;
    let api: DockerApi | undefined;
    let present = false;

    // Asynchronous on purpose: the server runs in this process.
    function docker(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
      return new Promise((resolve) => {
        execFile(
          cli.bin,
          ['-H', `unix://${join(dir, 'd.sock')}`, ...args],
          { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, DOCKER_CONFIG: join(dir, 'cfg') }, timeout: 30_000 },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    }

    before(async () => {
      present = await exists(cli.bin);
      if (!present) return;
      dir = await mkdtemp(join(tmpdir(), 'berth-api-cli-'));
      api = await startDockerApi({ engine: new FakeEngine(), socketPath: join(dir, 'd.sock') });
    });
    after(async () => {
      try {
        await api?.close();
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    });

    it('version, ps, images, volume ls, network ls', async (t) => {
      if (!present) return t.skip(`${cli.bin} is not installed`);
      const version = await docker('version');
      assert.equal(version.code, 0, version.stderr);
      assert.match(version.stdout, /API version:\s+1\.47 \(minimum version 1\.41\)/);
      const ps = await docker('ps', '--no-trunc');
      assert.equal(ps.code, 0, ps.stderr);
      assert.match(ps.stdout, /c0ffee0{58}\s+busybox:latest\s+"sleep 1000".*Up 5 minutes\s+web/);
      const images = await docker('images');
      assert.equal(images.code, 0, images.stderr);
      assert.match(images.stdout, /localhost:5000\/a\/b\s+1\s+abababababab/);
      const volumes = await docker('volume', 'ls');
      assert.match(volumes.stdout, /local\s+data/);
      const networks = await docker('network', 'ls');
      assert.match(networks.stdout, /bridge\s+bridge\s+local/);
      assert.match(networks.stdout, /none\s+null\s+local/);
    });

    it('inspect, logs, exec, pull, errors', async (t) => {
      if (!present) return t.skip(`${cli.bin} is not installed`);
      const inspect = await docker('inspect', '--format', '{{.State.Status}} {{.Name}}', 'web');
      assert.equal(inspect.stdout.trim(), 'running /web', inspect.stderr);
      const image = await docker('image', 'inspect', '--format', '{{.Os}}', 'localhost:5000/a/b:1');
      assert.equal(image.stdout.trim(), 'linux', image.stderr);
      const logs = await docker('logs', '-t', 'web');
      assert.equal(logs.stdout, '2026-11-22T02:10:00.123456789Z hello\n');
      assert.equal(logs.stderr, '2026-11-22T02:10:01.000000001Z oops\n');
      const exec = await docker('exec', 'web', 'ls');
      assert.equal(exec.code, 0, exec.stderr);
      assert.equal(exec.stdout, 'hi\n');
      const pull = await docker('pull', 'busybox');
      assert.equal(pull.code, 0, pull.stderr);
      assert.match(pull.stdout, /Status: Downloaded newer image/);
      const broken = await docker('pull', 'breaks');
      assert.notEqual(broken.code, 0);
      assert.match(broken.stderr, /registry went away/);
      const missing = await docker('pull', 'nosuch');
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /pull access denied/);
      const noContainer = await docker('stop', 'nosuch');
      assert.notEqual(noContainer.code, 0);
      assert.match(noContainer.stderr, /No such container: nosuch/);
      const run = await docker('run', '--rm', '-i', 'busybox', 'echo', 'hi');
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'hi\n');
      const net = await docker('network', 'create', 'n');
      assert.equal(net.code, 0, net.stderr);
      assert.equal(net.stdout.trim(), 'ee'.repeat(32));
    });

    it('exec -it through a pseudo-terminal', async (t) => {
      if (!present) return t.skip(`${cli.bin} is not installed`);
      if (!(await exists('/usr/bin/script'))) return t.skip('script(1) from util-linux is not installed');
      const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
        const cmd = `${cli.bin} -H unix://${join(dir, 'd.sock')} exec -it web sh`;
        execFile('/usr/bin/script', ['-qec', cmd, '/dev/null'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, DOCKER_CONFIG: join(dir, 'cfg') }, timeout: 30_000 }, (err, stdout) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
      assert.equal(out.code, 0);
      assert.equal(out.stdout.replace(/\r/g, ''), 'hi\n');
    });
  });
}
