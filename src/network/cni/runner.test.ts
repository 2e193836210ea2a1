// The runner against fake plugins: small shell scripts that record their environment and
// stdin into a log dir and print canned results. No root, no kernel state.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { BerthError } from '../../errors.js';
import type { CniConflist } from './conflist.js';
import { CniPluginError, CniRunner, formatCniArgs, normalizeResult, pluginConfig, type CniAttachment } from './runner.js';

// /proc/self/ns/net is a real nsfs file: the runner passes it as CNI_NETNS on DEL too.
const NETNS = '/proc/self/ns/net';

let root: string;
let bin: string;
let bin2: string;
let log: string;
let cache: string;

interface FakeOptions {
  /** Printed on ADD. */
  result?: unknown;
  /** The command on which it fails, printing `error` (JSON) or `stderr`. */
  failOn?: string;
  error?: unknown;
  stderr?: string;
  /** Starts a sleep, records its pid, and waits (for the timeout test). */
  hang?: boolean;
  versions?: string[];
  dir?: string;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function fakePlugin(name: string, o: FakeOptions = {}): void {
  const lines = [
    '#!/bin/sh',
    `L=${sh(log)}`,
    'n=$(cat "$L/seq" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$L/seq"',
    `cat > "$L/$n-${name}-$CNI_COMMAND.stdin"`,
    `env | grep '^CNI_' | sort > "$L/$n-${name}-$CNI_COMMAND.env"`,
    `echo "${name} $CNI_COMMAND" >> "$L/calls"`,
  ];
  if (o.hang) lines.push('sleep 30 & echo $! > "$L/sleep.pid"; wait');
  if (o.failOn) {
    lines.push(`if [ "$CNI_COMMAND" = ${o.failOn} ]; then`);
    if (o.error !== undefined) lines.push(`  printf '%s' ${sh(JSON.stringify(o.error))}`);
    if (o.stderr !== undefined) lines.push(`  printf '%s' ${sh(o.stderr)} >&2`);
    lines.push('  exit 1', 'fi');
  }
  const version = { cniVersion: '1.0.0', supportedVersions: o.versions ?? ['0.3.1', '0.4.0', '1.0.0'] };
  lines.push(
    'case "$CNI_COMMAND" in',
    `  ADD) printf '%s' ${sh(JSON.stringify(o.result ?? { cniVersion: '1.0.0' }))} ;;`,
    `  VERSION) printf '%s' ${sh(JSON.stringify(version))} ;;`,
    'esac',
  );
  const p = join(o.dir ?? bin, name);
  writeFileSync(p, lines.join('\n') + '\n');
  chmodSync(p, 0o755);
}

function calls(): string[] {
  return existsSync(join(log, 'calls')) ? readFileSync(join(log, 'calls'), 'utf8').trim().split('\n') : [];
}

function recorded(n: number, name: string, cmd: string): { env: Record<string, string>; stdin: Record<string, unknown> } {
  const base = join(log, `${n}-${name}-${cmd}`);
  const env: Record<string, string> = {};
  for (const line of readFileSync(`${base}.env`, 'utf8').split('\n').filter(Boolean)) {
    const i = line.indexOf('=');
    env[line.slice(0, i)] = line.slice(i + 1);
  }
  return { env, stdin: JSON.parse(readFileSync(`${base}.stdin`, 'utf8')) as Record<string, unknown> };
}

const BR_RESULT = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'br0', mac: '02:00:00:00:00:01' },
    { name: 'veth1', mac: '02:00:00:00:00:02' },
    { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: NETNS },
  ],
  ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 2 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['10.1.0.1'] },
};
const FINAL_RESULT = { ...BR_RESULT, routes: [{ dst: '0.0.0.0/0' }, { dst: '192.0.2.0/24', gw: '10.1.0.1' }] };

function conflist(over: Partial<CniConflist> = {}): CniConflist {
  return {
    cniVersion: '1.0.0',
    name: 'testnet',
    plugins: [
      { type: 'fakebr', bridge: 'br0', ipam: { type: 'fakeipam' } },
      { type: 'fakemap', capabilities: { portMappings: true, bandwidth: false } },
      { type: 'faketune', sysctl: { 'net.core.somaxconn': '512' } },
    ],
    ...over,
  };
}

function attachment(over: Partial<CniAttachment> = {}): CniAttachment {
  return {
    conflist: conflist(),
    containerId: 'c0ffee',
    netnsPath: NETNS,
    ifname: 'eth0',
    args: { K8S_POD_NAME: 'web' },
    capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1 } },
    ...over,
  };
}

function runner(timeoutMs?: number, warnings?: string[]): CniRunner {
  return new CniRunner({ pluginDirs: [bin, bin2], cacheDir: cache, timeoutMs, warn: (m) => warnings?.push(m) });
}

function expectError(err: unknown, code: string, ...patterns: RegExp[]): true {
  assert.ok(err instanceof BerthError, String(err));
  assert.equal(err.code, code, err.message);
  for (const p of patterns) assert.match(err.message, p);
  return true;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-cni-unit-'));
  bin = join(root, 'bin');
  bin2 = join(root, 'bin2');
  log = join(root, 'log');
  cache = join(root, 'cache');
  mkdirSync(bin);
  mkdirSync(bin2);
});

after(() => rmSync(root, { recursive: true, force: true }));

beforeEach(() => {
  rmSync(log, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(log);
  fakePlugin('fakebr', { result: BR_RESULT });
  fakePlugin('fakemap', { result: BR_RESULT });
  fakePlugin('faketune', { result: FINAL_RESULT });
});

describe('CniRunner.add', () => {
  it('runs the plugins in order with the CNI environment, chained prevResult and filtered runtimeConfig', async () => {
    const r = runner();
    const result = await r.add(attachment());
    assert.deepEqual(calls(), ['fakebr ADD', 'fakemap ADD', 'faketune ADD']);

    const first = recorded(1, 'fakebr', 'ADD');
    assert.deepEqual(first.env, {
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c0ffee',
      CNI_IFNAME: 'eth0',
      CNI_NETNS: NETNS,
      CNI_PATH: `${bin}:${bin2}`,
    });
    assert.deepEqual(first.stdin, { type: 'fakebr', bridge: 'br0', ipam: { type: 'fakeipam' }, name: 'testnet', cniVersion: '1.0.0' });

    const second = recorded(2, 'fakemap', 'ADD');
    assert.deepEqual(second.stdin.prevResult, BR_RESULT);
    assert.deepEqual(second.stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });

    const third = recorded(3, 'faketune', 'ADD');
    assert.equal(third.stdin.runtimeConfig, undefined);
    assert.deepEqual(third.stdin.prevResult, BR_RESULT);

    assert.deepEqual(result, normalizeResult(FINAL_RESULT, '1.0.0'));
    assert.equal(result.ips?.[0]?.address, '10.1.0.5/24');
    assert.deepEqual(r.cached(attachment()), result);
  });

  it('caches the raw final result and the config in one file per network + container + ifname', async () => {
    const r = runner();
    await r.add(attachment());
    const path = r.cachePath('testnet', 'c0ffee', 'eth0');
    assert.equal(path, join(cache, 'testnet+c0ffee+eth0.json'));
    assert.deepEqual(readdirSync(cache), ['testnet+c0ffee+eth0.json']);
    const entry = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    assert.equal(entry.kind, 'berth-cni-cache/v1');
    assert.deepEqual(entry.result, FINAL_RESULT);
    assert.deepEqual(entry.conflist, conflist());
    assert.equal(entry.netnsPath, NETNS);
    assert.deepEqual(entry.args, { K8S_POD_NAME: 'web' });
    assert.equal(r.listCached().length, 1);
    assert.equal(r.listCached()[0]!.containerId, 'c0ffee');
  });

  it('on a plugin failure reports its msg, details and type, DELs the whole list in reverse and caches nothing', async () => {
    fakePlugin('fakemap', { failOn: 'ADD', error: { cniVersion: '1.0.0', code: 7, msg: 'invalid portMappings', details: 'hostPort 0' } });
    const r = runner();
    await assert.rejects(r.add(attachment()), (err: unknown) => {
      expectError(err, 'InvalidArgument', /CNI plugin "fakemap" ADD on network "testnet" failed \(CNI error 7\): invalid portMappings: hostPort 0/);
      assert.ok(err instanceof CniPluginError);
      assert.equal(err.plugin, 'fakemap');
      assert.equal(err.cniCode, 7);
      assert.equal(err.details, 'hostPort 0');
      return true;
    });
    assert.deepEqual(calls(), ['fakebr ADD', 'fakemap ADD', 'faketune DEL', 'fakemap DEL', 'fakebr DEL']);
    assert.equal(recorded(3, 'faketune', 'DEL').stdin.prevResult, undefined);
    assert.equal(r.cached(attachment()), undefined);
    assert.equal(existsSync(cache) ? readdirSync(cache).length : 0, 0);
  });

  it('attaches a failed rollback to the ADD error instead of replacing it', async () => {
    fakePlugin('faketune', { failOn: 'ADD', error: { code: 11, msg: 'busy' } });
    fakePlugin('fakebr', { result: BR_RESULT, failOn: 'DEL', error: { code: 5, msg: 'disk on fire' } });
    await assert.rejects(runner().add(attachment()), (err: unknown) => {
      expectError(err, 'Unavailable', /faketune" ADD .* busy/);
      assert.match(String((err as BerthError).cleanupErrors[0]), /fakebr" DEL .*disk on fire/);
      return true;
    });
  });

  it('uses stderr when a plugin fails without error JSON', async () => {
    fakePlugin('fakebr', { failOn: 'ADD', stderr: 'panic: runtime error' });
    await assert.rejects(runner().add(attachment()), (err: unknown) =>
      expectError(err, 'Internal', /CNI plugin "fakebr" ADD on network "testnet" failed \(exit status 1\): panic: runtime error/),
    );
  });

  it('finds a missing plugin before running anything: NotFound naming the type and the dirs', async () => {
    const list = conflist();
    list.plugins.push({ type: 'nosuchplugin' });
    await assert.rejects(runner().add(attachment({ conflist: list })), (err: unknown) =>
      expectError(err, 'NotFound', new RegExp(`CNI plugin "nosuchplugin" not found in ${bin}, ${bin2}`)),
    );
    assert.deepEqual(calls(), []);
  });

  it('searches the plugin dirs in order and skips files that are not executable', () => {
    fakePlugin('twice', { dir: bin2 });
    writeFileSync(join(bin, 'twice'), 'not executable');
    chmodSync(join(bin, 'twice'), 0o644);
    assert.equal(runner().findPlugin('twice'), join(bin2, 'twice'));
    fakePlugin('twice', { dir: bin });
    assert.equal(runner().findPlugin('twice'), join(bin, 'twice'));
    assert.throws(() => runner().findPlugin('../bin/twice'), (err: unknown) => expectError(err, 'InvalidArgument', /not a path/));
  });

  it('kills a plugin (and what it started) that outlives the timeout', async () => {
    fakePlugin('fakebr', { hang: true });
    await assert.rejects(runner(1000).add(attachment()), (err: unknown) =>
      expectError(err, 'Unavailable', /CNI plugin "fakebr" ADD on network "testnet": timed out after 1000 ms \(killed\)/),
    );
    // On a starved machine the script may die before it starts its child: nothing to check then.
    if (!existsSync(join(log, 'sleep.pid'))) return;
    const pid = Number(readFileSync(join(log, 'sleep.pid'), 'utf8'));
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((res) => setTimeout(res, 20));
      } catch {
        alive = false;
      }
    }
    assert.equal(alive, false, `the plugin's child ${pid} survived`);
  });

  it('refuses bad container ids, interface names, CNI_ARGS and a missing netns', async () => {
    const r = runner();
    await assert.rejects(r.add(attachment({ containerId: '-x' })), (err: unknown) => expectError(err, 'InvalidArgument', /container id "-x"/));
    await assert.rejects(r.add(attachment({ ifname: 'a/b' })), (err: unknown) => expectError(err, 'InvalidArgument', /interface name "a\/b"/));
    await assert.rejects(r.add(attachment({ ifname: 'x'.repeat(16) })), (err: unknown) => expectError(err, 'InvalidArgument', /1-15 bytes/));
    await assert.rejects(r.add(attachment({ args: { A: 'x;y' } })), (err: unknown) => expectError(err, 'InvalidArgument', /CNI_ARGS A/));
    await assert.rejects(r.add(attachment({ netnsPath: join(root, 'gone') })), (err: unknown) =>
      expectError(err, 'NotFound', /network namespace .*gone does not exist/),
    );
    assert.deepEqual(calls(), []);
  });

  it('refuses a second ADD of the same attachment before its DEL', async () => {
    const r = runner();
    await r.add(attachment());
    await assert.rejects(r.add(attachment()), (err: unknown) => expectError(err, 'AlreadyExists', /c0ffee\/eth0 is already attached/));
    assert.equal(calls().length, 3);
    await r.add(attachment({ ifname: 'eth1' }));
    assert.equal(r.listCached().length, 2);
  });

  it('a plugin that prints nothing on ADD is an error, and the list is rolled back', async () => {
    fakePlugin('faketune', { result: '' });
    writeFileSync(join(bin, 'faketune'), readFileSync(join(bin, 'faketune'), 'utf8').replace(/ADD\) printf .*;;/, 'ADD) ;;'));
    await assert.rejects(runner().add(attachment()), (err: unknown) => expectError(err, 'Internal', /faketune" ADD .*printed no result/));
    assert.deepEqual(calls().slice(3), ['faketune DEL', 'fakemap DEL', 'fakebr DEL']);
  });
});

describe('CniRunner.del', () => {
  it('runs in reverse with the cached result as prevResult and the cached capability args, then drops the cache', async () => {
    const r = runner();
    await r.add(attachment());
    await r.del(attachment({ capabilityArgs: undefined, args: undefined }));
    assert.deepEqual(calls().slice(3), ['faketune DEL', 'fakemap DEL', 'fakebr DEL']);
    const tune = recorded(4, 'faketune', 'DEL');
    assert.deepEqual(tune.stdin.prevResult, FINAL_RESULT);
    assert.equal(tune.env.CNI_NETNS, NETNS);
    assert.equal(tune.env.CNI_ARGS, 'IgnoreUnknown=1;K8S_POD_NAME=web');
    assert.deepEqual(recorded(5, 'fakemap', 'DEL').stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.equal(r.cached(attachment()), undefined);
    assert.deepEqual(readdirSync(cache), []);
  });

  it('without a cache still runs every plugin (no prevResult), and is repeatable', async () => {
    const r = runner();
    await r.del(attachment());
    await r.del(attachment());
    assert.deepEqual(calls(), ['faketune DEL', 'fakemap DEL', 'fakebr DEL', 'faketune DEL', 'fakemap DEL', 'fakebr DEL']);
    assert.equal(recorded(1, 'faketune', 'DEL').stdin.prevResult, undefined);
  });

  it('passes an empty CNI_NETNS when the namespace is gone', async () => {
    const r = runner();
    const pin = join(root, 'pin');
    writeFileSync(pin, '');
    await r.add(attachment({ netnsPath: pin }));
    rmSync(pin);
    await r.del(attachment({ netnsPath: pin }));
    assert.equal(recorded(4, 'faketune', 'DEL').env.CNI_NETNS, '');
    assert.equal(r.cached(attachment()), undefined);
  });

  it('tolerates a plugin error about something already gone, and goes on', async () => {
    const warnings: string[] = [];
    const r = runner(undefined, warnings);
    await r.add(attachment());
    fakePlugin('fakemap', { failOn: 'DEL', error: { code: 999, msg: 'failed to find chain: no such file or directory' } });
    await r.del(attachment());
    assert.deepEqual(calls().slice(3), ['faketune DEL', 'fakemap DEL', 'fakebr DEL']);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /fakemap" DEL .*tolerated/);
    assert.equal(r.cached(attachment()), undefined);
  });

  it('stops at any other plugin error and keeps the cache for a retry', async () => {
    const r = runner();
    await r.add(attachment());
    fakePlugin('fakemap', { failOn: 'DEL', error: { code: 5, msg: 'iptables: resource busy' } });
    await assert.rejects(r.del(attachment()), (err: unknown) => expectError(err, 'Internal', /fakemap" DEL .*CNI error 5.*resource busy/));
    assert.deepEqual(calls().slice(3), ['faketune DEL', 'fakemap DEL']);
    assert.ok(r.cached(attachment()));
    fakePlugin('fakemap', { result: BR_RESULT });
    await r.del(attachment());
    assert.equal(r.cached(attachment()), undefined);
  });

  it('goes on without prevResult when the cache is unreadable, and removes it', async () => {
    const warnings: string[] = [];
    const r = runner(undefined, warnings);
    mkdirSync(cache, { recursive: true });
    const path = r.cachePath('testnet', 'c0ffee', 'eth0');
    writeFileSync(path, '{"kind": "berth-cni-cache/v1", "resu');
    assert.throws(() => r.cached(attachment()), (err: unknown) => expectError(err, 'Internal', /CNI cache .*invalid JSON/));
    await r.del(attachment());
    assert.equal(recorded(1, 'faketune', 'DEL').stdin.prevResult, undefined);
    assert.match(warnings[0]!, /ignoring the unreadable cache/);
    assert.equal(existsSync(path), false);
  });

  it('listCached skips an unreadable entry with a warning', async () => {
    const warnings: string[] = [];
    const r = runner(undefined, warnings);
    await r.add(attachment());
    writeFileSync(join(cache, 'other+c1+eth0.json'), 'garbage');
    writeFileSync(join(cache, '.testnet+c2+eth0.json.123.tmp'), 'half-written');
    assert.deepEqual(r.listCached().map((e) => e.containerId), ['c0ffee']);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /other\+c1\+eth0\.json: invalid JSON/);
  });

  it('gives no prevResult to DEL under a version that predates it (0.3.1)', async () => {
    const list = conflist({ cniVersion: '0.3.1' });
    const r = runner();
    await r.add(attachment({ conflist: list }));
    await r.del(attachment({ conflist: list }));
    assert.equal(recorded(4, 'faketune', 'DEL').stdin.prevResult, undefined);
    assert.equal(recorded(4, 'faketune', 'DEL').stdin.cniVersion, '0.3.1');
  });
});

describe('CniRunner.check', () => {
  it('runs in order with the cached result as prevResult', async () => {
    const r = runner();
    await r.add(attachment());
    await r.check(attachment());
    assert.deepEqual(calls().slice(3), ['fakebr CHECK', 'fakemap CHECK', 'faketune CHECK']);
    assert.deepEqual(recorded(4, 'fakebr', 'CHECK').stdin.prevResult, FINAL_RESULT);
  });

  it('fails with the plugin error', async () => {
    const r = runner();
    await r.add(attachment());
    fakePlugin('fakemap', { failOn: 'CHECK', error: { code: 999, msg: 'rule missing' } });
    await assert.rejects(r.check(attachment()), (err: unknown) => expectError(err, 'Internal', /fakemap" CHECK .*rule missing/));
  });

  it('needs a cached ADD', async () => {
    await assert.rejects(runner().check(attachment()), (err: unknown) => expectError(err, 'FailedPrecondition', /no cached ADD result/));
  });

  it('does nothing when the list disables CHECK or predates it', async () => {
    const r = runner();
    await r.check(attachment({ conflist: conflist({ disableCheck: true }) }));
    await r.check(attachment({ conflist: conflist({ cniVersion: '0.3.1' }) }));
    assert.deepEqual(calls(), []);
  });
});

describe('CniRunner.validate', () => {
  it('asks each plugin for its versions', async () => {
    await runner().validate(conflist());
    assert.deepEqual(calls(), ['fakebr VERSION', 'fakemap VERSION', 'faketune VERSION']);
    assert.deepEqual(recorded(1, 'fakebr', 'VERSION').stdin, { cniVersion: '1.0.0' });
    fakePlugin('fakemap', { versions: ['0.3.1'] });
    await assert.rejects(runner().validate(conflist()), (err: unknown) =>
      expectError(err, 'InvalidArgument', /plugin "fakemap" .* does not support cniVersion 1\.0\.0 \(it supports 0\.3\.1\)/),
    );
  });
});

describe('serialisation per container', () => {
  it('does not interleave a DEL with a running ADD of the same container', async () => {
    const r = runner();
    await Promise.all([r.add(attachment()), r.del(attachment())]);
    assert.deepEqual(calls(), ['fakebr ADD', 'fakemap ADD', 'faketune ADD', 'faketune DEL', 'fakemap DEL', 'fakebr DEL']);
  });
});

describe('helpers', () => {
  it('pluginConfig merges capabilities into an existing runtimeConfig and drops a stray prevResult', () => {
    const conf = pluginConfig({
      conflist: conflist(),
      plugin: { type: 'x', capabilities: { portMappings: true }, runtimeConfig: { other: 1 }, prevResult: { stale: true } },
      capabilityArgs: { portMappings: [], mac: '02:00:00:00:00:01' },
    });
    assert.deepEqual(conf, { type: 'x', capabilities: { portMappings: true }, runtimeConfig: { other: 1, portMappings: [] }, name: 'testnet', cniVersion: '1.0.0' });
  });

  it('formatCniArgs keeps a given IgnoreUnknown and is empty without args', () => {
    assert.equal(formatCniArgs(undefined), '');
    assert.equal(formatCniArgs({ IgnoreUnknown: 'false', A: 'b=c' }), 'IgnoreUnknown=false;A=b=c');
  });

  it('normalizeResult reads 0.2.0 (ip4/ip6) and 0.4.0 (ips with version) results', () => {
    assert.deepEqual(
      normalizeResult({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0' }] }, dns: {} }, '0.2.0'),
      { cniVersion: '0.2.0', ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }] },
    );
    assert.deepEqual(normalizeResult({ ips: [{ version: '4', address: '10.0.0.2/24', interface: 0 }], interfaces: [{ name: 'eth0', sandbox: '' }] }, '0.4.0'), {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0' }],
      ips: [{ address: '10.0.0.2/24', interface: 0 }],
    });
  });
});
