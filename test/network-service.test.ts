// NetworkService on the real kernel (root): bridges, veths in pinned namespaces, berth's nft
// table, the embedded DNS with a stub upstream on 127.0.0.1, published ports from 127.0.0.1,
// connect/disconnect, live-restore, bad input, and nothing leaked afterwards. Traffic goes
// only to 127.0.0.1 and to this test's own namespaces. Every kernel object has a test name
// (bridge berthsvctst0 and the networks' generated ones, subnets 10.199.80-82.0/24, nft table berthsvctst).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../src/errors.js';
import { Firewall } from '../src/network/firewall.js';
import { NetworkService, type NetworkServiceOptions } from '../src/network/service.js';
import type { NetworkRecord, Sandbox } from '../src/network/types.js';
import { mountsUnder, detachMountsUnder } from './helpers/leaks.js';

const TABLE = 'berthsvctst';
const DEFAULT_BRIDGE = 'berthsvctst0';
/** The CNI bridge plugin's bridge (the plugin never deletes it: the test does). */
const CNI_BRIDGE = 'berthsvctst1';

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const cmd of ['/usr/bin/nsenter', '/bin/busybox']) if (!existsSync(cmd)) return `${cmd} is missing`;
  return false;
}
let skip: string | false = skipReason();

let netlink: typeof import('../src/host/netlink.js');
let base = '';
let root = '';
let runRoot = '';
let www = '';
let stub: Socket | undefined;
let stubPort = 0;
let svc: NetworkService | undefined;
const children: ChildProcess[] = [];

function run(cmd: string, args: string[], timeoutMs = 8000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs busybox inside the sandbox's network namespace only (mounts and pids stay the host's). */
function inNs(sb: Sandbox, args: string[], timeoutMs = 8000): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('/usr/bin/nsenter', [`--net=${sb.netnsPath}`, '/bin/busybox', ...args], timeoutMs);
}

function httpGet(url: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

/** A DNS stub on 127.0.0.1: upstream.test → 10.9.9.9, everything else NXDOMAIN. */
function startStub(): Promise<void> {
  return new Promise((resolve) => {
    stub = createSocket('udp4');
    stub.on('message', (q, rinfo) => {
      if (q.length < 12) return;
      let off = 12;
      const labels: string[] = [];
      while (off < q.length && q[off]! > 0) {
        labels.push(q.subarray(off + 1, off + 1 + q[off]!).toString());
        off += q[off]! + 1;
      }
      const qEnd = off + 5;
      const qtype = q.readUInt16BE(off + 1);
      const name = labels.join('.').toLowerCase();
      const known = name === 'upstream.test';
      const answer = known && qtype === 1;
      const head = Buffer.alloc(12);
      q.copy(head, 0, 0, 2);
      head.writeUInt16BE(known ? 0x8180 : 0x8183, 2);
      head.writeUInt16BE(1, 4);
      head.writeUInt16BE(answer ? 1 : 0, 6);
      const rr = answer ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 9, 9]) : Buffer.alloc(0);
      stub!.send(Buffer.concat([head, q.subarray(12, qEnd), rr]), rinfo.port, rinfo.address);
    });
    stub.bind(0, '127.0.0.1', () => {
      stubPort = stub!.address().port;
      resolve();
    });
  });
}

function options(): NetworkServiceOptions {
  return {
    root,
    runRoot,
    dnsPort: 0,
    upstreams: [{ address: '127.0.0.1', port: stubPort }],
    defaultBridge: { subnet: '10.199.80.0/24', bridge: DEFAULT_BRIDGE },
    warn: (m) => console.log(`# warn: ${m}`),
    nftTable: TABLE,
    cniPluginDirs: ['/usr/lib/cni'],
  };
}

interface Snapshot {
  links: string[];
  pins: string[];
  mounts: number;
}

/** This test's bridges and the host ends of this test's veths: nothing else is looked at or removed. */
const ours = { bridges: new Set<string>([DEFAULT_BRIDGE, CNI_BRIDGE]), veths: new Set<string>() };

function remember(sb: Sandbox): Sandbox {
  for (const e of sb.endpoints) if (e.hostIfname) ours.veths.add(e.hostIfname);
  return sb;
}

function snapshot(): Snapshot {
  const links = netlink
    .listLinks()
    .filter((l) => ours.bridges.has(l.name) || (l.name.startsWith('vberth') && ((l.master && ours.bridges.has(l.master)) || ours.veths.has(l.name))))
    .map((l) => l.name)
    .sort();
  let pins: string[] = [];
  try {
    pins = readdirSync(join(runRoot, 'netns')).sort();
  } catch {
    // not made yet
  }
  // The netns dir itself stays a shared mount point (as /run/netns does); pins under it must go.
  return { links, pins, mounts: mountsUnder([join(runRoot, 'netns')]).filter((m) => m.mountPoint !== join(runRoot, 'netns')).length };
}

async function dnsSockets(): Promise<string[]> {
  const out: string[] = [];
  for (const flag of ['-Hlnu', '-Hlnt']) {
    const r = await run('ss', [flag]);
    out.push(...r.stdout.split('\n').filter((l) => /10\.199\.8[0-2]\./.test(l)));
  }
  return out;
}

async function tableExists(): Promise<boolean> {
  return (await run('nft', ['list', 'table', 'inet', TABLE])).code === 0;
}

before(async () => {
  if (skip) return;
  netlink = await import('../src/host/netlink.js');
  const why = netlink.netlinkAvailable();
  if (why) {
    skip = why;
    return;
  }
  base = mkdtempSync(join(tmpdir(), 'berth-netsvc-'));
  root = join(base, 'root');
  runRoot = join(base, 'run');
  www = join(base, 'www');
  mkdirSync(www);
  writeFileSync(join(www, 'index.html'), 'hello from one\n');
  await startStub();
});

after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
  }
  if (svc) await svc.close().catch(() => {});
  stub?.close();
  if (!base) return;
  // Whatever a failed run left behind: only this test's names.
  try {
    for (const n of snapshot().links) netlink.deleteLink(n);
    for (const p of snapshot().pins) netlink.removeNetns(join(runRoot, 'netns', p));
  } catch (err) {
    console.log(`# cleanup: ${(err as Error).message}`);
  }
  await new Firewall({ table: TABLE }).removeAll().catch(() => {});
  detachMountsUnder(base);
  rmSync(base, { recursive: true, force: true });
});

test('networks, sandboxes, DNS, published ports, connect/disconnect, restore, bad input, no leaks', { skip }, async (t) => {
  const t0 = process.hrtime.bigint();
  svc = await NetworkService.open(options());
  console.log(`# open (first start: default bridge, DNS, nft table): ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`);
  const clean = snapshot();
  assert.deepEqual(clean.links, [DEFAULT_BRIDGE]);
  assert.deepEqual(clean.pins, []);

  const netA = await svc.create({ name: 'tst-a', subnets: [{ subnet: '10.199.81.0/24' }] });
  const netB = await svc.create({ name: 'tst-b', subnets: [{ subnet: '10.199.82.0/24' }] });
  ours.bridges.add(netA.bridge!);
  ours.bridges.add(netB.bridge!);
  const bridges = [DEFAULT_BRIDGE, netA.bridge!, netB.bridge!].sort();
  assert.deepEqual(snapshot().links, bridges);

  const one = remember(await svc.setUp({ id: 'a1'.repeat(32), name: 'tst-one', hostname: 'one', endpoints: [{ network: 'tst-a' }], ports: [{ containerPort: 8080, protocol: 'tcp' }] }));
  const two = remember(await svc.setUp({ id: 'b2'.repeat(32), name: 'tst-two', hostname: 'two', endpoints: [{ network: 'tst-a', aliases: ['deux'] }], ports: [] }));
  const three = remember(await svc.setUp({ id: 'c3'.repeat(32), name: 'tst-three', hostname: 'three', endpoints: [{ network: 'tst-b' }], ports: [] }));
  const ipOne = one.endpoints[0]!.ipv4!.address;
  const ipTwo = two.endpoints[0]!.ipv4!.address;
  assert.equal(ipOne, '10.199.81.2');
  assert.equal(ipTwo, '10.199.81.3');
  assert.deepEqual(one.resolv.nameservers, ['10.199.81.1']);
  const hostPort = one.ports[0]!.hostPort;
  const inside = netlink.listLinks(one.netnsPath).map((l) => `${l.name}:${l.addresses.filter((a) => !a.startsWith('fe80')).join(',')}`).sort();
  assert.deepEqual(inside, ['eth0:10.199.81.2/24', 'lo:127.0.0.1/8,::1/128']);

  const httpd = spawn('/usr/bin/nsenter', [`--net=${one.netnsPath}`, '/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
  children.push(httpd);
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    ready = (await inNs(one, ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/'], 2000)).stdout.includes('hello');
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, 'busybox httpd did not start in sandbox one');

  await t.test('same network: reach by address and by name', async () => {
    const ping = await inNs(two, ['ping', '-c', '1', '-W', '2', ipOne]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const page = await inNs(two, ['timeout', '5', '/bin/busybox', 'wget', '-q', '-O', '-', `http://${ipOne}:8080/`]);
    assert.equal(page.stdout, 'hello from one\n', page.stderr);
    const ns = await inNs(two, ['nslookup', 'tst-one', '10.199.81.1']);
    assert.match(ns.stdout, /10\.199\.81\.2/, ns.stdout + ns.stderr);
    const alias = await inNs(one, ['nslookup', 'deux', '10.199.81.1']);
    assert.match(alias.stdout, /10\.199\.81\.3/, alias.stdout + alias.stderr);
    const fwd = await inNs(two, ['nslookup', 'upstream.test', '10.199.81.1']);
    assert.match(fwd.stdout, /10\.9\.9\.9/, `forwarded to the stub: ${fwd.stdout}${fwd.stderr}`);
  });

  await t.test('another network: neither reach nor resolve', async () => {
    const ping = await inNs(three, ['ping', '-c', '1', '-W', '1', ipOne]);
    assert.notEqual(ping.code, 0, 'ping across networks must fail');
    const page = await inNs(three, ['timeout', '3', '/bin/busybox', 'wget', '-q', '-O', '-', `http://${ipOne}:8080/`]);
    assert.notEqual(page.stdout, 'hello from one\n');
    const ns = await inNs(three, ['nslookup', 'tst-one', '10.199.82.1']);
    assert.doesNotMatch(ns.stdout, /10\.199\.81\.2/);
  });

  await t.test('published port from 127.0.0.1', async () => {
    assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/`), 'hello from one\n');
  });

  await t.test('setUp + tearDown cost on the default bridge', async () => {
    const n = 30;
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = (i.toString(16).padStart(2, '0') + 'e').repeat(16) + 'e'.repeat(16);
      const t0 = process.hrtime.bigint();
      const sb = remember(await svc!.setUp({ id, name: `tst-perf${i}`, hostname: 'p', endpoints: [{ network: 'bridge' }], ports: [] }));
      await svc!.tearDown(sb);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / n;
    console.log(`# setUp+tearDown, one endpoint on the default bridge, ${n} runs: median ${times[n >> 1]!.toFixed(2)} ms, mean ${mean.toFixed(2)} ms, min ${times[0]!.toFixed(2)} ms, max ${times[n - 1]!.toFixed(2)} ms`);
    const withPort: number[] = [];
    for (let i = 0; i < 10; i++) {
      const id = 'f'.repeat(62) + i.toString(16).padStart(2, '0');
      const t0 = process.hrtime.bigint();
      const sb = remember(await svc!.setUp({ id, name: `tst-perfp${i}`, hostname: 'p', endpoints: [{ network: 'bridge' }], ports: [{ containerPort: 80, protocol: 'tcp' }] }));
      await svc!.tearDown(sb);
      withPort.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    withPort.sort((a, b) => a - b);
    console.log(`# setUp+tearDown with one published port, 10 runs: median ${withPort[5]!.toFixed(2)} ms`);
  });

  await t.test('50 sandboxes on one network, then none: no address twice, no DNS entry left', async () => {
    const many: Sandbox[] = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 50; i++) {
      many.push(remember(await svc!.setUp({ id: i.toString().padStart(4, '0') + 'd'.repeat(60), name: `tst-many${i}`, hostname: 'm', endpoints: [{ network: 'tst-b' }], ports: [] })));
    }
    const up = Number(process.hrtime.bigint() - t0) / 1e6;
    const addrs = many.map((s) => s.endpoints[0]!.ipv4!.address);
    assert.equal(new Set(addrs).size, 50);
    const ns = await inNs(three, ['nslookup', 'tst-many49', '10.199.82.1']);
    assert.match(ns.stdout, new RegExp(addrs[49]!.replace(/\./g, '\\.')), ns.stdout + ns.stderr);
    const t1 = process.hrtime.bigint();
    for (const s of many) await svc!.tearDown(s);
    console.log(`# 50 sandboxes on one network: setUp ${up.toFixed(0)} ms, tearDown ${(Number(process.hrtime.bigint() - t1) / 1e6).toFixed(0)} ms`);
    assert.deepEqual(svc!.endpoints(netB.id).map((e) => e.sandboxName), ['tst-three']);
    const gone = await inNs(three, ['nslookup', 'tst-many49', '10.199.82.1']);
    assert.doesNotMatch(gone.stdout, new RegExp(addrs[49]!.replace(/\./g, '\\.')));
  });

  await t.test('disconnect and connect live', async () => {
    await svc!.disconnect(two, 'tst-a');
    assert.deepEqual(netlink.listLinks(two.netnsPath).map((l) => l.name), ['lo']);
    assert.deepEqual(two.endpoints, []);
    const gone = await inNs(one, ['nslookup', 'tst-two', '10.199.81.1']);
    assert.doesNotMatch(gone.stdout, /10\.199\.81\.3/);
    const ep = await svc!.connect(two, { network: 'tst-a' });
    remember(two);
    assert.equal(ep.ifname, 'eth0');
    const page = await inNs(two, ['timeout', '5', '/bin/busybox', 'wget', '-q', '-O', '-', `http://${ipOne}:8080/`]);
    assert.equal(page.stdout, 'hello from one\n', page.stderr);
    const ep2 = await svc!.connect(two, { network: 'tst-b' });
    remember(two);
    assert.equal(ep2.ifname, 'eth1');
    const ping = await inNs(two, ['ping', '-c', '1', '-W', '2', three.endpoints[0]!.ipv4!.address]);
    assert.equal(ping.code, 0, 'connected to tst-b, two reaches three');
    await svc!.disconnect(two, 'tst-b');
  });

  await t.test('bad input: clear errors, nothing half-made', async () => {
    const before = snapshot();
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => svc!.create({ name: 'tst-c', subnets: [{ subnet: '10.199.81.128/25' }] }), 'Conflict', /overlaps 10\.199\.81\.0\/24 of network tst-a/],
      [() => svc!.create({ name: 'tst-a' }), 'Conflict', /network with name tst-a already exists/],
      [() => svc!.setUp({ id: 'd4'.repeat(32), name: 'tst-bad', hostname: 'x', endpoints: [{ network: 'tst-a', ipv4: '10.199.82.50' }], ports: [] }), 'InvalidArgument', /outside network tst-a's subnets/],
      [() => svc!.setUp({ id: 'd4'.repeat(32), name: 'tst-bad', hostname: 'x', endpoints: [{ network: 'tst-a' }], ports: [{ containerPort: 80, protocol: 'tcp', hostPort: { start: hostPort, end: hostPort } }] }), 'Conflict', new RegExp(String(hostPort))],
      [() => svc!.setUp({ id: 'd4'.repeat(32), name: 'tst-bad', hostname: 'x', endpoints: [{ network: 'tst-a' }, { network: 'tst-nope' }], ports: [] }), 'NotFound', /network tst-nope not found/],
      [() => svc!.remove('tst-a'), 'FailedPrecondition', /active endpoints \(tst-one, tst-two\)/],
    ];
    for (const [fn, code, re] of cases) {
      await assert.rejects(fn(), (e) => isBerthError(e, code as never) && re.test(e.message), String(fn));
      // A veth of an unwound setUp goes with its namespace, in the kernel's own time.
      for (let i = 0; i < 30 && JSON.stringify(snapshot()) !== JSON.stringify(before); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(snapshot(), before);
    }
  });

  await t.test('cni network (bridge + host-local): addresses from the chain, reachability, DEL', { skip: existsSync('/usr/lib/cni/bridge') && existsSync('/usr/lib/cni/host-local') ? false : 'no CNI plugins in /usr/lib/cni' }, async () => {
    const conf = join(base, 'tst-cni.conflist');
    writeFileSync(
      conf,
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'berthsvctst',
        plugins: [
          {
            type: 'bridge',
            bridge: CNI_BRIDGE,
            isGateway: true,
            ipMasq: false,
            ipam: { type: 'host-local', ranges: [[{ subnet: '10.199.83.0/24' }]], dataDir: join(base, 'host-local') },
          },
        ],
      }),
    );
    const net = await svc!.create({ name: 'tst-cni', driver: 'cni', options: { conflist: conf } });
    const c1 = await svc!.setUp({ id: 'c1'.repeat(32), name: 'tst-c1', hostname: 'c1', endpoints: [{ network: 'tst-cni' }], ports: [] });
    const c2 = await svc!.setUp({ id: 'c2'.repeat(32), name: 'tst-c2', hostname: 'c2', endpoints: [{ network: net.id }], ports: [] });
    try {
      const a1 = c1.endpoints[0]!.ipv4?.address;
      assert.match(a1 ?? '', /^10\.199\.83\.\d+$/);
      assert.ok(c1.endpoints[0]!.cniResult);
      const ping = await inNs(c2, ['ping', '-c', '1', '-W', '2', a1!]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    } finally {
      await svc!.tearDown(c1);
      await svc!.tearDown(c2);
    }
    assert.deepEqual(readdirSync(join(root, 'network', 'cni-cache')).filter((f) => f.endsWith('.json')), []);
    await svc!.remove('tst-cni');
  });

  await t.test('berthd restart: restore keeps connectivity, mappings and names; orphans go', async () => {
    const orphan = remember(await svc!.setUp({ id: 'e5'.repeat(32), name: 'tst-orphan', hostname: 'o', endpoints: [{ network: 'tst-a' }], ports: [] }));
    await svc!.close();
    const t1 = process.hrtime.bigint();
    svc = await NetworkService.open(options());
    await svc.restore([one, two, three]);
    console.log(`# reopen + restore of 3 sandboxes: ${(Number(process.hrtime.bigint() - t1) / 1e6).toFixed(1)} ms`);
    assert.ok(!snapshot().links.includes(orphan.endpoints[0]!.hostIfname!), 'the orphan veth is gone');
    assert.ok(!existsSync(orphan.netnsPath), 'the orphan netns pin is gone');
    assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/`), 'hello from one\n');
    const ns = await inNs(two, ['nslookup', 'tst-one', '10.199.81.1']);
    assert.match(ns.stdout, /10\.199\.81\.2/, ns.stdout + ns.stderr);
    const next = remember(await svc.setUp({ id: 'f6'.repeat(32), name: 'tst-new', hostname: 'n', endpoints: [{ network: 'tst-a' }], ports: [] }));
    assert.ok(![ipOne, ipTwo].includes(next.endpoints[0]!.ipv4!.address), 'restored addresses are not handed out again');
    await svc.tearDown(next);
  });

  httpd.kill('SIGKILL');
  await new Promise((r) => (httpd.exitCode !== null || httpd.signalCode !== null ? r(undefined) : httpd.once('exit', r)));

  for (const sb of [one, two, three]) await svc.tearDown(sb);
  await svc.tearDown(one); // idempotent
  for (const n of [netA, netB] as NetworkRecord[]) await svc.remove(n.id);
  // The kernel deletes a veth pair when its namespace dies, in its own worker: allow it a moment.
  for (let i = 0; i < 50 && snapshot().links.some((l) => l.startsWith('vberth')); i++) await new Promise((r) => setTimeout(r, 100));
  const after = snapshot();
  assert.deepEqual(after.links.filter((l) => l !== CNI_BRIDGE), [DEFAULT_BRIDGE]);
  assert.deepEqual(after.pins, []);
  assert.equal(after.mounts, 0);
  await svc.close();
  svc = undefined;
  // The default bridge and the table stay for live-restore; the test removes its own.
  netlink.deleteLink(DEFAULT_BRIDGE);
  netlink.deleteLink(CNI_BRIDGE);
  await new Firewall({ table: TABLE }).removeAll();
  assert.deepEqual(snapshot().links, []);
  assert.equal(await tableExists(), false, `nft table inet ${TABLE} remains`);
  assert.deepEqual(await dnsSockets(), [], 'no DNS sockets remain on the test subnets');
});
