// kill -9 of `berth-oci create` at awkward moments leaves a state that `delete` cleans up
// completely: no processes, cgroups or state left behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Suite } from './helpers/suite.js';
import { show, sleep, waitFor } from './helpers/runtime.js';

const s = new Suite('crash');
const rt = s.rt;
after(() => s.assertClean());

/** Starts `create` in the background and SIGKILLs it once `marker` exists. */
async function killCreateWhen(id: string, bundle: string, marker: string): Promise<void> {
  const child = spawn(rt.bin, ['--root', rt.root, 'create', '--bundle', bundle, id], { stdio: 'ignore' });
  try {
    await waitFor(`create of ${id} to reach ${marker}`, () => (existsSync(marker) ? true : undefined), 20_000);
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((r) => child.once('exit', r));
}

for (const hook of ['createRuntime', 'createContainer'] as const) {
  test(`create killed while a ${hook} hook runs: delete cleans everything up`, { skip: rt.isRunc ? 'runc-specific cleanup differs' : false }, async () => {
    const b = s.bundle({ args: ['/probe', 'sleep', '30'] });
    const marker = join(b.hostDir('marks'), 'in-hook');
    const script = join(b.dir, 'hook.sh');
    // The hook's own process is the test's: a createRuntime hook runs beside the runtime and,
    // as with runc, outlives a runtime killed with SIGKILL, so it ends by itself here.
    writeFileSync(script, `#!/bin/sh\ntouch ${marker}\nsleep 2\n`);
    chmodSync(script, 0o755);
    b.spec.hooks = { [hook]: [{ path: script, timeout: 60 }] };
    b.save();
    const id = s.id(hook);
    await killCreateWhen(id, b.dir, marker);
    // Whatever is left must be deletable and, once deleted, gone.
    const d = await rt.delete(id, { force: true });
    assert.equal(d.code, 0, show(d));
    assert.notEqual((await rt.cmd(['state', id])).code, 0, 'no state left');
    await sleep(2500);
    const leftovers = readFileSync('/proc/self/mountinfo', 'utf8').includes(b.rootfs);
    assert.ok(!leftovers, 'no mounts of the rootfs on the host');
  });
}
