// The firewall against the real kernel: a test table (not `inet berth`, which a berthd or
// another test may own), test bridges and namespaces made with plain `ip`, a tiny HTTP server in
// a namespace. Traffic goes only to 127.0.0.1, to the test bridges' addresses and to the
// test namespaces.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firewall, reconcileIptables, type FirewallNetwork, type FirewallPorts } from '../src/network/firewall.js';
import { applyNft, listNftTable, nftBackend, runCommand } from '../src/host/nft.js';

const TABLE = 'berthtst_fw';
const BR_A = 'berthtst1';
const BR_B = 'berthtst2';
const NS = { a1: 'berthtst-fw-a1', a2: 'berthtst-fw-a2', b1: 'berthtst-fw-b1', x1: 'berthtst-fw-x1', ipt: 'berthtst-fw-ipt' };
// The test's /24 cut in two: network A and network B.
const GW_A = '10.199.78.1';
const GW_B = '10.199.78.129';
const IP = { a1: '10.199.78.2', a2: '10.199.78.3', x1: '10.199.78.4', b1: '10.199.78.130' };
// A ULA /64 of the test's own for network A's IPv6.
const GW6_A = 'fd8b:e47b:ffff:78::1';
const IP6_A1 = 'fd8b:e47b:ffff:78::2';
const NET_A: FirewallNetwork = { id: 'f'.repeat(63) + 'a', bridge: BR_A, subnets: ['10.199.78.0/25', 'fd8b:e47b:ffff:78::/64'], internal: false, masquerade: true, icc: true };
const NET_B: FirewallNetwork = { id: 'f'.repeat(63) + 'b', bridge: BR_B, subnets: ['10.199.78.128/25'], internal: false, masquerade: true, icc: true };
const PORTS: FirewallPorts = {
  sandboxId: 'berthtst-fw-a1',
  bridge: BR_A,
  containerIpv4: IP.a1,
  containerIpv6: IP6_A1,
  mappings: [
    { containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 18080 },
    { containerPort: 8080, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 18081 },
    { containerPort: 8080, protocol: 'tcp', hostIp: '::', hostPort: 18081 },
    { containerPort: 8080, protocol: 'tcp', hostIp: '::1', hostPort: 18083 },
  ],
};

const why =
  process.getuid?.() !== 0
    ? 'needs root'
    : spawnSync('nft', ['--version']).status !== 0
      ? 'needs nft'
      : !existsSync('/bin/busybox')
        ? 'needs /bin/busybox'
        : undefined;

let webRoot = '';
const servers: ChildProcess[] = [];
let rulesetBefore = '';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function quiet(fn: () => void): void {
  try {
    fn();
  } catch {
    // cleanup of something that may not exist
  }
}

/** The ruleset without counters and without tables named berth* (ours, or other tests' and berthd's). */
function foreignRuleset(): string {
  const text = execFileSync('nft', ['-s', 'list', 'ruleset'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return text
    .split(/^(?=table )/m)
    .filter((t) => !/^table \S+ berth/.test(t))
    .join('');
}

function bridge(name: string, gw: string): void {
  ip('link', 'add', name, 'type', 'bridge');
  ip('addr', 'add', `${gw}/25`, 'dev', name);
  ip('link', 'set', name, 'up');
}

function sandbox(ns: string, br: string, addr: string, gw: string, hostEnd: string, loopback = true): void {
  ip('netns', 'add', ns);
  ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  ip('link', 'set', hostEnd, 'master', br, 'up');
  ip('-n', ns, 'addr', 'add', `${addr}/25`, 'dev', 'eth0');
  if (loopback) ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'set', 'eth0', 'up');
  ip('-n', ns, 'route', 'add', 'default', 'via', gw);
}

function cleanup(): void {
  for (const s of servers) quiet(() => s.kill('SIGKILL'));
  for (const ns of Object.values(NS)) quiet(() => ip('netns', 'del', ns));
  for (const l of [BR_A, BR_B, 'berthtst1va1', 'berthtst1va2', 'berthtst1vx1', 'berthtst2vb1']) quiet(() => ip('link', 'del', l));
  quiet(() => execFileSync('nft', ['delete', 'table', 'inet', TABLE], { stdio: 'ignore' }));
  if (webRoot) rmSync(webRoot, { recursive: true, force: true });
}

/** Runs a short node script inside a namespace; its stdout, or null when it failed. */
function inNs(ns: string, script: string): string | null {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout : null;
}

/** inNs without blocking this process: for clients of servers the test itself runs. */
async function inNsAsync(ns: string, script: string): Promise<string | null> {
  const r = await runCommand('timeout', ['10', 'ip', 'netns', 'exec', ns, process.execPath, '-e', script]);
  return r.code === 0 ? r.stdout : null;
}

const HTTP_GET = (url: string): string =>
  `require('http').get(${JSON.stringify(url)}, {timeout: 2000}, (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => process.stdout.write(b)); }).on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => { console.error(e.message); process.exit(1); });`;

function ping(ns: string, addr: string): boolean {
  return spawnSync('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '1', addr], { stdio: 'ignore', timeout: 5000 }).status === 0;
}

function httpGet(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host, port, path: '/', agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

before(() => {
  if (why) return;
  cleanup();
  rulesetBefore = foreignRuleset();
  webRoot = mkdtempSync(join(tmpdir(), 'berthtst-fw-'));
  writeFileSync(join(webRoot, 'index.html'), 'hi from a1\n');
  bridge(BR_A, GW_A);
  bridge(BR_B, GW_B);
  sandbox(NS.a1, BR_A, IP.a1, GW_A, 'berthtst1va1');
  ip('addr', 'add', `${GW6_A}/64`, 'dev', BR_A, 'nodad');
  ip('-n', NS.a1, 'addr', 'add', `${IP6_A1}/64`, 'dev', 'eth0', 'nodad');
  sandbox(NS.a2, BR_A, IP.a2, GW_A, 'berthtst1va2');
  sandbox(NS.b1, BR_B, IP.b1, GW_B, 'berthtst2vb1');
  // A hostile container: no loopback of its own, 127.0.0.0/8 routed to the host over its eth0.
  sandbox(NS.x1, BR_A, IP.x1, GW_A, 'berthtst1vx1', false);
  ip('-n', NS.x1, 'route', 'add', '127.0.0.0/8', 'via', GW_A, 'dev', 'eth0');
  execFileSync('ip', ['netns', 'exec', NS.x1, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet']);
  // What the network service does for every bridge: DNAT from 127.0.0.1 needs it.
  writeFileSync(`/proc/sys/net/ipv4/conf/${BR_A}/route_localnet`, '1');
  // And for every port: with br_netfilter, DNAT back to the same bridge is bridged, and a bridge
  // sends a frame back out of the port it came from only in hairpin mode.
  for (const port of ['berthtst1va1', 'berthtst1va2']) ip('link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'on');
  servers.push(spawn('ip', ['netns', 'exec', NS.a1, 'busybox', 'httpd', '-f', '-p', '8080', '-h', webRoot], { stdio: 'ignore' }));
});

after(() => {
  if (why) return;
  cleanup();
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
  assert.equal(/berthtst[12]/.test(links), false, 'test links left behind');
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.equal(netns.includes('berthtst-fw-'), false, 'test netns left behind');
});

/** Whether a datagram the hostile namespace sends to 127.0.0.1 reaches a socket of the host's loopback. */
async function loopbackReachable(): Promise<boolean> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind({ address: '127.0.0.1', port: 0 }, resolve));
  try {
    const got = new Promise<boolean>((resolve) => {
      sock.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 1000);
    });
    await inNsAsync(NS.x1, `const s = require('dgram').createSocket('udp4'); s.send('spoof', ${sock.address().port}, '127.0.0.1', () => s.close());`);
    return await got;
  } finally {
    sock.close();
  }
}

async function waitForServer(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (inNs(NS.a1, HTTP_GET(`http://${IP.a1}:8080/`)) !== null) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('httpd in the test namespace did not start');
}

test('published ports, hairpin, isolation, icc and DNS redirect through the real kernel', { skip: why }, async (t) => {
  await waitForServer();
  const crossBefore = ping(NS.a1, IP.b1);
  const loopbackBefore = await loopbackReachable();
  const warnings: string[] = [];
  const fw = new Firewall({ table: TABLE, warn: (m) => warnings.push(m) });
  await fw.sync({ networks: [NET_A, NET_B], ports: [] });
  t.diagnostic(`nft backend: ${nftBackend()}`);

  await t.test('127.0.0.1 and 0.0.0.0 mappings answer from 127.0.0.1', async () => {
    await fw.addPorts(PORTS);
    assert.equal(await httpGet(18080), 'hi from a1\n');
    assert.equal(await httpGet(18081), 'hi from a1\n');
    assert.equal(await httpGet(18081, GW_A), 'hi from a1\n', 'from a host address');
  });

  await t.test(':: mappings answer on the host\'s IPv6 addresses; ::1 is refused with a warning', async () => {
    assert.equal(await httpGet(18081, GW6_A), 'hi from a1\n');
    assert.deepEqual(warnings, [`firewall: port not published: ::1:18083/tcp: the kernel does not route ::1 to another host, publish on :: or another address`]);
    warnings.length = 0;
  });

  await t.test('route_localnet does not open the host\'s loopback to containers', async (tt) => {
    if (!loopbackBefore) tt.diagnostic('the host dropped loopback traffic from the bridge even before berth\'s table existed');
    assert.equal(await loopbackReachable(), false);
  });

  await t.test('hairpin: the container and its neighbour reach it through the host port', () => {
    assert.equal(inNs(NS.a1, HTTP_GET(`http://${GW_A}:18081/`)), 'hi from a1\n');
    assert.equal(inNs(NS.a2, HTTP_GET(`http://${GW_A}:18081/`)), 'hi from a1\n');
  });

  await t.test('isolation: no traffic between two berth bridges', (tt) => {
    if (!crossBefore) {
      tt.skip('the host does not forward between the test bridges even without berth (ip_forward, another firewall)');
      return;
    }
    assert.equal(ping(NS.a1, IP.b1), false);
    assert.equal(ping(NS.b1, IP.a1), false);
    assert.equal(ping(NS.a1, GW_A), true, 'the gateway stays reachable');
  });

  await t.test('isolation spares published ports: another network reaches them through a host address', () => {
    assert.equal(inNs(NS.b1, HTTP_GET(`http://${GW_B}:18081/`)), 'hi from a1\n');
  });

  await t.test('icc=false: no traffic between endpoints of one bridge', async (tt) => {
    assert.equal(ping(NS.a2, IP.a1), true);
    await fw.addNetwork({ ...NET_A, icc: false });
    const brNf = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables') && execFileSync('cat', ['/proc/sys/net/bridge/bridge-nf-call-iptables'], { encoding: 'utf8' }).trim() === '1';
    if (!brNf) tt.diagnostic('br_netfilter is not active: bridged traffic skips nftables, icc=false cannot hold');
    else assert.equal(ping(NS.a2, IP.a1), false);
    await fw.addNetwork(NET_A);
    assert.equal(ping(NS.a2, IP.a1), true);
  });

  await t.test('DNS redirect: gateway:53 reaches the server on its own port, udp and tcp', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind({ address: GW_A, port: 0 }, resolve));
    const tcp: Server = createServer();
    await new Promise<void>((resolve) => tcp.listen({ host: GW_A, port: 0 }, resolve));
    const udpPort = udp.address().port;
    const tcpPort = (tcp.address() as { port: number }).port;
    try {
      // One port serves both protocols in berth; here each protocol gets its own server and redirect.
      await fw.addNetwork({ ...NET_A, dnsRedirect: [{ gateway: GW_A, port: udpPort }] });
      const gotUdp = new Promise<string>((resolve) => udp.once('message', (m) => resolve(m.toString())));
      await inNsAsync(NS.a1, `const s = require('dgram').createSocket('udp4'); s.send('ping-udp', 53, '${GW_A}', () => s.close());`);
      assert.equal(await gotUdp, 'ping-udp');

      await fw.addNetwork({ ...NET_A, dnsRedirect: [{ gateway: GW_A, port: tcpPort }] });
      const gotTcp = new Promise<string>((resolve) => tcp.once('connection', (c) => c.once('data', (d) => (resolve(d.toString()), c.destroy()))));
      await inNsAsync(NS.a1, `const c = require('net').connect(53, '${GW_A}', () => c.end('ping-tcp')); c.on('error', () => process.exit(1));`);
      assert.equal(await gotTcp, 'ping-tcp');
    } finally {
      udp.close();
      tcp.close();
      await fw.addNetwork(NET_A);
    }
  });

  await t.test('the cost of one addPorts/removePorts pair (diagnostic only)', async () => {
    const pair = async (f: Firewall, n: number): Promise<number> => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        await f.addPorts({ ...PORTS, sandboxId: 'bench', mappings: [{ containerPort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 28000 + i }] });
        await f.removePorts('bench');
      }
      return Number(process.hrtime.bigint() - start) / 1e6 / n / 2;
    };
    const spawnFw = new Firewall({
      table: TABLE,
      apply: async (text) => {
        const r = await runCommand('nft', ['-f', '-'], text);
        if (r.code !== 0) throw new Error(r.stderr);
      },
    });
    await spawnFw.sync({ networks: [NET_A, NET_B], ports: [{ ...PORTS, mappings: PORTS.mappings.slice(0, 3) }] });
    const viaNft = await pair(spawnFw, 20);
    await fw.sync({ networks: [NET_A, NET_B], ports: [{ ...PORTS, mappings: PORTS.mappings.slice(0, 3) }] });
    const viaDefault = await pair(fw, 20);
    t.diagnostic(`one change: ${nftBackend()} ${viaDefault.toFixed(2)} ms, nft -f - ${viaNft.toFixed(2)} ms`);
  });

  await t.test('removePorts: the host ports stop answering', async () => {
    await fw.removePorts(PORTS.sandboxId);
    await assert.rejects(httpGet(18080));
    await assert.rejects(httpGet(18081));
    await assert.rejects(httpGet(18081, GW6_A));
  });

  await t.test('removeAll: the table is gone and nothing else in the ruleset changed', async () => {
    await fw.removeAll();
    assert.equal(await listNftTable('inet', TABLE), null);
    assert.equal(foreignRuleset(), rulesetBefore);
    assert.equal(ping(NS.a2, IP.a1), true);
  });
  assert.deepEqual(warnings, []);
});

test('iptables coexistence with a FORWARD policy DROP, in a namespace of its own', { skip: why }, async (t) => {
  if (spawnSync('iptables', ['--version']).status !== 0) {
    t.skip('needs iptables');
    return;
  }
  ip('netns', 'add', NS.ipt);
  try {
    const inside = (cmd: string, ...args: string[]): string => execFileSync('ip', ['netns', 'exec', NS.ipt, cmd, ...args], { encoding: 'utf8' });
    inside('iptables', '-P', 'FORWARD', 'DROP');
    inside('iptables', '-A', 'FORWARD', '-i', 'other0', '-m', 'comment', '--comment', 'not ours', '-j', 'ACCEPT');
    const run = (cmd: 'iptables' | 'ip6tables', args: string[]) => runCommand('ip', ['netns', 'exec', NS.ipt, cmd, ...args]);
    const fw = new Firewall({ table: TABLE, iptables: run, apply: (text) => void execFileSync('ip', ['netns', 'exec', NS.ipt, 'nft', '-f', '-'], { input: text }) });
    await fw.sync({ networks: [{ ...NET_A, bridge: 'custombr0' }], ports: [] });
    const forward = inside('iptables', '-S', 'FORWARD');
    assert.match(forward, /^-A FORWARD -i berth\+ -m comment --comment berthtst_fw -j ACCEPT$/m);
    assert.match(forward, /^-A FORWARD -o custombr0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment berthtst_fw -j ACCEPT$/m);
    assert.equal(forward.split('\n').filter((l) => l.includes('berthtst_fw')).length, 4);
    // Docker started since: its DOCKER-USER chain is where the rules belong.
    inside('iptables', '-N', 'DOCKER-USER');
    await fw.ensureCoexistence();
    assert.equal(inside('iptables', '-S', 'FORWARD').includes('berthtst_fw'), false);
    assert.equal(inside('iptables', '-S', 'DOCKER-USER').split('\n').filter((l) => l.includes('berthtst_fw')).length, 4);
    await fw.removeAll();
    const all = inside('iptables', '-S');
    assert.equal(all.includes('berthtst_fw'), false);
    assert.match(all, /--comment "not ours"/);
    assert.equal(inside('ip6tables', '-S').includes('berthtst_fw'), false);
    // And the real reconcile with a policy ACCEPT leaves everything alone.
    inside('iptables', '-P', 'FORWARD', 'ACCEPT');
    assert.deepEqual(await reconcileIptables({ run, comment: TABLE, interfaces: ['berth+'] }), []);
    assert.equal(inside('iptables', '-S').includes('berthtst_fw'), false);
  } finally {
    quiet(() => ip('netns', 'del', NS.ipt));
  }
});

test('applyNft reports nft\'s own message and changes nothing on a bad script', { skip: why }, async () => {
  await assert.rejects(applyNft(`add table inet ${TABLE}\nadd chain inet ${TABLE} c { bogus }\n`), (e: Error) => /bogus|syntax/i.test(e.message));
  assert.equal(await listNftTable('inet', TABLE), null);
});
