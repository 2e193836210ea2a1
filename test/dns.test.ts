// The embedded DNS seen from a real network namespace (root): a test-only namespace pinned
// in a temp dir, a veth pair btdns*-h/-c with 10.199.253.1/30 on the host end, the server
// on 10.199.253.1:53 and busybox nslookup inside the namespace. Forwarding goes to a stub
// upstream on 127.0.0.1; nothing leaves the machine. Everything is removed and checked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDns } from '../src/network/dns/index.js';
import { buildMessage, parseMessage, RecordType, responseFlags } from '../src/network/dns/message.js';
import { describeNetLeaks, netLeaks, reapNetLeaks, type NetLeakScope } from './helpers/net-leaks.js';

const HOST_ADDR = '10.199.253.1';
const CLIENT_ADDR = '10.199.253.2';
const DB_ADDR = '10.199.253.3';
const suffix = Math.random().toString(16).slice(2, 6);
const HOST_IF = `btdns${suffix}h`;
const CLIENT_IF = `btdns${suffix}c`;

function why(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/bin/busybox')) return 'needs /bin/busybox';
  if (spawnSync('unshare', ['--version']).status !== 0 || spawnSync('nsenter', ['--version']).status !== 0) return 'needs unshare and nsenter';
  const addrs = execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' });
  if (addrs.includes('10.199.253.')) return '10.199.253.0/30 is in use on this host';
  return false;
}
const skip = why();

let dir = '';
let nsFile = '';
let scope: NetLeakScope;
let dns: EmbeddedDns | undefined;
let stub: dgram.Socket | undefined;
let stubSeen: string[] = [];

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Asynchronous on purpose: the server runs in this process, so a synchronous spawn would leave nobody to answer. */
function nslookup(args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=${nsFile}`, '/bin/busybox', 'nslookup', ...args, HOST_ADDR], { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ ok: !err, out: `${stdout}${stderr}` }),
    );
  });
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'berth-dns-test-'));
  const nsDir = join(dir, 'netns');
  mkdirSync(nsDir);
  nsFile = join(nsDir, 'client');
  writeFileSync(nsFile, '');
  scope = { linkPrefixes: [HOST_IF], netnsDirs: [nsDir] };
  execFileSync('unshare', [`--net=${nsFile}`, 'true']);
  ip(['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', CLIENT_IF]);
  ip(['link', 'set', CLIENT_IF, 'netns', nsFile]);
  ip(['addr', 'add', `${HOST_ADDR}/30`, 'dev', HOST_IF]);
  ip(['link', 'set', HOST_IF, 'up']);
  execFileSync('nsenter', [`--net=${nsFile}`, 'ip', 'addr', 'add', `${CLIENT_ADDR}/30`, 'dev', CLIENT_IF]);
  execFileSync('nsenter', [`--net=${nsFile}`, 'ip', 'link', 'set', CLIENT_IF, 'up']);
  execFileSync('nsenter', [`--net=${nsFile}`, 'ip', 'link', 'set', 'lo', 'up']);

  stub = dgram.createSocket('udp4');
  await new Promise<void>((r) => stub!.bind({ address: '127.0.0.1', port: 0 }, r));
  stub.on('message', (m, rinfo) => {
    const q = parseMessage(m);
    const name = q.questions[0]!.name.toLowerCase();
    stubSeen.push(name);
    const known = name === 'example.test' && q.questions[0]!.type === RecordType.A;
    const resp = buildMessage({
      ...q,
      flags: responseFlags(q.flags, known ? 0 : 3),
      answers: known ? [{ name: q.questions[0]!.name, type: RecordType.A, class: 1, ttl: 30, address: '203.0.113.1' }] : [],
    });
    stub!.send(resp, rinfo.port, rinfo.address);
  });
  const upstream = { address: '127.0.0.1', port: stub.address().port };
  dns = new EmbeddedDns({ upstreams: () => [upstream], timeoutMs: 1000 });
});

after(async () => {
  if (skip) return;
  await dns?.close();
  await new Promise<void>((r) => (stub ? stub.close(() => r()) : r()));
  spawnSync('ip', ['link', 'delete', HOST_IF], { stdio: 'ignore' });
  spawnSync('umount', [nsFile], { stdio: 'ignore' });
  rmSync(nsFile, { force: true });
  const leaks = netLeaks(scope);
  reapNetLeaks(leaks);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(describeNetLeaks(leaks), '', 'nothing left behind');
});

test('a container in its own namespace resolves names, reverse names and forwarded names through port 53 on its gateway', { skip }, async (t) => {
  try {
    await dns!.listen('dnstest', HOST_ADDR, { port: 53, networkName: 'dnstest' });
  } catch (err) {
    t.skip(`cannot listen on ${HOST_ADDR}:53: ${(err as Error).message}`);
    return;
  }
  dns!.register('dnstest', { sandboxId: 'client', names: ['client'], ipv4: CLIENT_ADDR });
  dns!.register('dnstest', { sandboxId: 'db', names: ['db', 'database'], ipv4: DB_ADDR });

  const byName = await nslookup(['-type=a', 'Database']);
  assert.ok(byName.ok, byName.out);
  assert.match(byName.out, new RegExp(`Address:\\s*${DB_ADDR.replace(/\./g, '\\.')}`));
  const scoped = await nslookup(['-type=a', 'client.dnstest']);
  assert.match(scoped.out, new RegExp(`Address:\\s*${CLIENT_ADDR.replace(/\./g, '\\.')}`));
  const reverse = await nslookup([DB_ADDR]);
  assert.match(reverse.out, /db\.dnstest/);
  const forwarded = await nslookup(['-type=a', 'example.test']);
  assert.match(forwarded.out, /Address:\s*203\.0\.113\.1/);
  assert.ok(stubSeen.includes('example.test'));
  assert.ok(!stubSeen.includes('database') && !stubSeen.includes('db'), 'table names are never forwarded');

  dns!.unregister('dnstest', 'client');
  const refused = await nslookup(['-type=a', 'db']);
  assert.equal(refused.ok, false);
  assert.match(refused.out, /REFUSED/);
  await dns!.unlisten('dnstest');
});
