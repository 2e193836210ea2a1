// The image part of the demo (called by scripts/demo.sh with a work dir): make an image from
// a busybox directory, push it to Debian's registry started on 127.0.0.1, pull it into a
// second, empty store, mount the image's layers as an overlay rootfs and run it with
// berth-oci. No internet: the registry runs here.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { ImageService, credentialStoreFrom, mountAll, unmountAll } = await import(join(repo, 'dist/src/image/index.js'));
const work = process.argv[2];
const say = (text) => console.log(`\n\x1b[1m== ${text}\x1b[0m`);
const oci = (...args) => spawnSync(join(repo, 'bin/berth-oci'), ['--root', join(work, 'state'), ...args], { stdio: 'inherit' });

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

async function startRegistry() {
  const port = await freePort();
  const dir = join(work, 'registry');
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (ok) return { host: `127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('the registry did not start');
}

function printProgress(event) {
  if (event.status === 'Downloading' || event.status === 'Pushing') return;
  console.log(event.id ? `${event.id}: ${event.status}` : event.status);
}

const registry = await startRegistry();
const name = `${registry.host}/demo/busybox:1`;
const noCredentials = credentialStoreFrom({});
const builder = await ImageService.open({ root: join(work, 'images-builder'), credentials: noCredentials });
const runner = await ImageService.open({ root: join(work, 'images-runner'), credentials: noCredentials });
const rootfs = join(work, 'bundle', 'rootfs');
let mounted = false;
try {
  say(`an image from the directory ${join(work, 'image-src')} (busybox), tagged ${name}`);
  const created = await builder.fromDirectory(join(work, 'image-src'), {
    name,
    config: { Cmd: ['sh', '-c', 'echo "hello from an image: $(cat /etc/motd)"; ls /'], Env: ['PATH=/bin'], WorkingDir: '/' },
  });
  console.log(`image ${created.digest ?? ''}`.trim());

  say(`push to Debian's registry on ${registry.host}`);
  await builder.push(name, { onProgress: printProgress });

  say('pull into a second, empty store (layers download and unpack into overlay snapshots)');
  await runner.pull(name, { onProgress: printProgress });
  for (const image of await runner.list()) console.log(`${image.names.join(', ')}  ${image.id.slice(7, 19)}  ${image.size} bytes`);

  say('mount its layers as the rootfs of a bundle and run it with berth-oci');
  const { image, mounts } = await runner.prepareRootfs('demo-image', name);
  mkdirSync(rootfs, { recursive: true });
  mountAll(mounts, rootfs);
  mounted = true;
  spawnSync(join(repo, 'bin/berth-oci'), ['spec', '--bundle', join(work, 'bundle')]);
  const specPath = join(work, 'bundle', 'config.json');
  const spec = JSON.parse(readFileSync(specPath, 'utf8'));
  spec.process.terminal = false;
  spec.process.args = [...(image.view.entrypoint ?? []), ...(image.view.cmd ?? [])];
  spec.process.env = image.view.env;
  spec.process.cwd = image.view.workingDir || '/';
  spec.root = { path: 'rootfs', readonly: false };
  writeFileSync(specPath, JSON.stringify(spec, null, 2));
  const run = oci('run', '--bundle', join(work, 'bundle'), 'demo-image');
  if (run.status !== 0) throw new Error(`berth-oci run exited with ${run.status}`);

  say('remove the image: gc takes its blobs and snapshots');
} finally {
  if (mounted) unmountAll(rootfs);
  await runner.releaseRootfs('demo-image').catch(() => {});
  const removed = await runner.remove(name).catch((err) => ({ untagged: [], gc: { removedBlobs: [], removedSnapshots: [], error: err } }));
  console.log(`untagged ${removed.untagged.join(', ') || '(nothing)'}; removed ${removed.gc.removedBlobs.length} blobs, ${removed.gc.removedSnapshots.length} snapshots`);
  builder.close();
  runner.close();
  registry.stop();
  rmSync(join(work, 'registry'), { recursive: true, force: true });
}
