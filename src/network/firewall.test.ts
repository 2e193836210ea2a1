import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { isBerthError } from '../errors.js';
import {
  Firewall,
  normalizeCidr,
  reconcileIptables,
  renderTable,
  splitIptablesLine,
  type CommandResult,
  type FirewallNetwork,
  type FirewallPorts,
  type FirewallState,
  type IptablesRunner,
} from './firewall.js';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);

const bridgeNet: FirewallNetwork = {
  id: ID_A,
  bridge: 'berth0',
  subnets: ['10.87.0.0/16', 'fd8b:e47b:0:1::/64'],
  internal: false,
  masquerade: true,
  icc: true,
  dnsRedirect: [{ gateway: '10.87.0.1', port: 5353 }],
};
const internalNet: FirewallNetwork = { id: ID_B, bridge: 'berth-bbbbbbbbb', subnets: ['10.80.0.0/24'], internal: true, masquerade: true, icc: false };
const web: FirewallPorts = {
  sandboxId: 'c1',
  bridge: 'berth0',
  containerIpv4: '10.87.0.2',
  containerIpv6: 'fd8b:e47b:0:1::2',
  mappings: [
    { containerPort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 },
    { containerPort: 80, protocol: 'tcp', hostIp: '::', hostPort: 8080 },
    { containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 5300 },
    { containerPort: 9, protocol: 'sctp', hostIp: 'fd00::1', hostPort: 9 },
  ],
};
const state: FirewallState = { networks: [bridgeNet, internalNet], ports: [web] };

const noIptables: IptablesRunner = async () => ({ code: 127, stdout: '', stderr: '' });

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim());
}

test('renderTable: sets hold the networks and ports, base chains never change', () => {
  const text = renderTable(state);
  const l = lines(text);
  assert.equal(l[0], 'table inet berth {');
  assert.ok(l.includes('set bridges { type ifname; elements = { "berth0", "berth-bbbbbbbbb" } }'));
  assert.ok(l.includes('set masq4 { type ipv4_addr; flags interval; elements = { 10.87.0.0/16 } }'), 'internal networks never masquerade');
  assert.ok(l.includes('set masq6 { type ipv6_addr; flags interval; elements = { fd8b:e47b:0:1::/64 } }'));
  assert.ok(l.some((x) => x.startsWith('map pub4_any') && x.includes('tcp . 8080 : 10.87.0.2 . 80')));
  assert.ok(l.some((x) => x.startsWith('map pub6_any') && x.includes('tcp . 8080 : fd8b:e47b:0:1::2 . 80')));
  assert.ok(l.some((x) => x.startsWith('map pub4_ip') && x.includes('127.0.0.1 . udp . 5300 : 10.87.0.2 . 53')));
  assert.ok(l.some((x) => x.startsWith('map pub6_ip') && x.includes('fd00::1 . sctp . 9 : fd8b:e47b:0:1::2 . 9')));
  assert.ok(l.some((x) => x.startsWith('map dns4') && x.includes('10.87.0.1 . udp . 53 : 10.87.0.1 . 5353, 10.87.0.1 . tcp . 53 : 10.87.0.1 . 5353')));
  assert.ok(l.some((x) => x.startsWith('map fwd_to') && x.includes(`"berth-bbbbbbbbb" : jump net-${ID_B}-in`)));
  // The per-network chains: isolation, internal, icc.
  const chain = (name: string): string[] => {
    const start = l.indexOf(`chain ${name} {`);
    assert.ok(start >= 0, name);
    return l.slice(start + 1, l.indexOf('}', start));
  };
  assert.deepEqual(chain(`net-${ID_A}`), ['ct status dnat return', 'oifname @bridges oifname != "berth0" drop']);
  assert.deepEqual(chain(`net-${ID_B}`), ['oifname != "berth-bbbbbbbbb" drop', 'oifname "berth-bbbbbbbbb" drop']);
  assert.deepEqual(chain(`net-${ID_B}-in`), ['iifname != "berth-bbbbbbbbb" drop']);
  assert.ok(chain('output').includes('ip6 daddr ::1 return'));
  assert.ok(chain('postrouting').includes('ip saddr 127.0.0.0/8 oifname @bridges masquerade'));
  // An empty state is the same skeleton.
  const empty = lines(renderTable({ networks: [], ports: [] }));
  assert.equal(empty.filter((x) => x.startsWith('chain ')).length, 6);
  assert.deepEqual(chain('guard').slice(1), ['iifname @bridges ip daddr 127.0.0.0/8 drop', 'iifname @bridges ip saddr 127.0.0.0/8 drop']);
  assert.equal(empty.filter((x) => x.includes('elements')).length, 0);
});

test('renderTable: ::1 and missing container addresses are left out; bad input is InvalidArgument', () => {
  const ports: FirewallPorts = {
    sandboxId: 's',
    bridge: 'berth0',
    containerIpv4: '10.87.0.3',
    mappings: [
      { containerPort: 1, protocol: 'tcp', hostIp: '::1', hostPort: 1 },
      { containerPort: 1, protocol: 'tcp', hostIp: '::', hostPort: 2 },
    ],
  };
  const text = renderTable({ networks: [], ports: [ports] });
  assert.equal(text.includes(' . 1 :'), false);
  assert.equal(text.includes('. 2 :'), false);
  const bad = (s: FirewallState, re: RegExp): void => assert.throws(() => renderTable(s), (e) => isBerthError(e, 'InvalidArgument') && re.test(e.message));
  bad({ networks: [{ ...bridgeNet, bridge: 'x"; flush ruleset' }], ports: [] }, /bridge/);
  bad({ networks: [{ ...bridgeNet, bridge: 'a-much-too-long-name' }], ports: [] }, /bridge/);
  bad({ networks: [{ ...bridgeNet, subnets: ['10.0.0.0/33'] }], ports: [] }, /subnets\[0\]/);
  bad({ networks: [{ ...bridgeNet, dnsRedirect: [{ gateway: '10.87.0.1', port: 0 }] }], ports: [] }, /dnsRedirect\[0\]\.port/);
  bad({ networks: [bridgeNet, { ...internalNet, bridge: 'berth0' }], ports: [] }, /two networks/);
  bad({ networks: [], ports: [{ ...web, mappings: [{ containerPort: 1, protocol: 'icmp' as never, hostIp: '0.0.0.0', hostPort: 1 }] }] }, /protocol/);
  bad({ networks: [], ports: [{ ...web, containerIpv4: 'fd00::1' }] }, /containerIpv4/);
  assert.throws(() => renderTable(state, { table: 'bad table' }), (e) => isBerthError(e, 'InvalidArgument'));
});

test('normalizeCidr clears host bits for both families', () => {
  assert.deepEqual(normalizeCidr('10.87.3.4/16', 'x'), ['10.87.0.0/16', 4]);
  assert.deepEqual(normalizeCidr('10.1.2.3', 'x'), ['10.1.2.3/32', 4]);
  assert.deepEqual(normalizeCidr('fd8b:e47b:0:1::5/64', 'x'), ['fd8b:e47b:0:1::/64', 6]);
  assert.deepEqual(normalizeCidr('::ffff:10.0.0.1/120', 'x'), ['::ffff:a00:0/120', 6]);
  assert.deepEqual(normalizeCidr('1:0:0:1:0:0:0:1/128', 'x'), ['1:0:0:1::1/128', 6]);
});

test('renderTable output passes `nft -c` (check only) when nft and root are here', (t) => {
  if (process.getuid?.() !== 0 || spawnSync('nft', ['--version']).status !== 0) {
    t.skip('needs nft and root (nft -c asks the kernel)');
    return;
  }
  const text = `add table inet berthunit\ndelete table inet berthunit\n${renderTable(state, { table: 'berthunit' })}`;
  const r = spawnSync('nft', ['-c', '-f', '-'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

function recorder(): { texts: string[]; apply: (t: string) => void } {
  const texts: string[] = [];
  return { texts, apply: (t) => void texts.push(t) };
}

test('each method is one transaction touching only its elements and chains', async () => {
  const rec = recorder();
  const fw = new Firewall({ apply: rec.apply, iptables: noIptables });
  await fw.sync({ networks: [bridgeNet], ports: [] });
  assert.equal(rec.texts.length, 1);
  assert.match(rec.texts[0]!, /^add table inet berth\ndelete table inet berth\ntable inet berth \{/);

  await fw.addPorts(web);
  assert.equal(rec.texts.length, 2);
  assert.deepEqual(lines(rec.texts[1]!).filter(Boolean), [
    'add element inet berth pub4_ip { 127.0.0.1 . udp . 5300 : 10.87.0.2 . 53 }',
    'add element inet berth pub4_any { tcp . 8080 : 10.87.0.2 . 80 }',
    'add element inet berth pub6_ip { fd00::1 . sctp . 9 : fd8b:e47b:0:1::2 . 9 }',
    'add element inet berth pub6_any { tcp . 8080 : fd8b:e47b:0:1::2 . 80 }',
  ]);

  await fw.removePorts('c1');
  assert.deepEqual(lines(rec.texts[2]!).filter(Boolean), [
    'delete element inet berth pub4_ip { 127.0.0.1 . udp . 5300 : 10.87.0.2 . 53 }',
    'delete element inet berth pub4_any { tcp . 8080 : 10.87.0.2 . 80 }',
    'delete element inet berth pub6_ip { fd00::1 . sctp . 9 : fd8b:e47b:0:1::2 . 9 }',
    'delete element inet berth pub6_any { tcp . 8080 : fd8b:e47b:0:1::2 . 80 }',
  ]);
  await fw.removePorts('c1');
  assert.equal(rec.texts.length, 3, 'removing twice changes nothing');

  await fw.addNetwork(internalNet);
  const added = lines(rec.texts[3]!);
  assert.deepEqual(added.slice(0, 5), [
    `add chain inet berth net-${ID_B}`,
    `add rule inet berth net-${ID_B} oifname != "berth-bbbbbbbbb" drop`,
    `add rule inet berth net-${ID_B} oifname "berth-bbbbbbbbb" drop`,
    `add chain inet berth net-${ID_B}-in`,
    `add rule inet berth net-${ID_B}-in iifname != "berth-bbbbbbbbb" drop`,
  ]);
  assert.ok(added.includes('add element inet berth bridges { "berth-bbbbbbbbb" }'));
  assert.ok(added.includes('add element inet berth subnets4 { 10.80.0.0/24 }'));
  assert.ok(!added.some((x) => x.includes('masq4')));

  await fw.removeNetwork(ID_B);
  const removed = lines(rec.texts[4]!).filter(Boolean);
  assert.ok(removed.indexOf(`delete element inet berth fwd_from { "berth-bbbbbbbbb" : jump net-${ID_B} }`) < removed.indexOf(`delete chain inet berth net-${ID_B}`));
  assert.ok(removed.includes(`flush chain inet berth net-${ID_B}-in`));
  assert.deepEqual(fw.state(), { networks: [bridgeNet], ports: [] });

  await fw.removeAll();
  assert.equal(rec.texts[5], 'add table inet berth\ndelete table inet berth\n');
  assert.equal(rec.texts.length, 6);
});

test('re-adding a network or ports replaces them in the same transaction', async () => {
  const rec = recorder();
  const fw = new Firewall({ apply: rec.apply, iptables: noIptables });
  await fw.sync({ networks: [bridgeNet], ports: [web] });
  await fw.addNetwork({ ...bridgeNet, icc: false });
  const t = lines(rec.texts[1]!);
  assert.ok(t.indexOf(`delete chain inet berth net-${ID_A}`) < t.indexOf(`add chain inet berth net-${ID_A}`));
  assert.ok(t.includes(`add rule inet berth net-${ID_A} oifname "berth0" drop`));
  await fw.addPorts({ ...web, mappings: [web.mappings[0]!] });
  const p = lines(rec.texts[2]!).filter(Boolean);
  assert.equal(p.filter((x) => x.startsWith('delete element')).length, 4);
  assert.deepEqual(p.filter((x) => x.startsWith('add element')), ['add element inet berth pub4_any { tcp . 8080 : 10.87.0.2 . 80 }']);
});

test('a port another sandbox holds is a Conflict before anything is applied', async () => {
  const rec = recorder();
  const fw = new Firewall({ apply: rec.apply, iptables: noIptables });
  await fw.sync({ networks: [bridgeNet], ports: [web] });
  await assert.rejects(
    fw.addPorts({ sandboxId: 'c2', bridge: 'berth0', containerIpv6: 'fd8b:e47b:0:1::3', mappings: [{ containerPort: 1, protocol: 'tcp', hostIp: '0::0', hostPort: 8080 }] }),
    (e) => isBerthError(e, 'Conflict') && e.message === 'port 8080/tcp on 0::0 is already published by c1',
  );
  await assert.rejects(fw.addNetwork({ ...internalNet, bridge: 'berth0' }), (e) => isBerthError(e, 'Conflict'));
  assert.equal(rec.texts.length, 1);
});

test('before sync: no table → the whole table is written with the change in it', async () => {
  const rec = recorder();
  const fw = new Firewall({ apply: rec.apply, iptables: noIptables, list: async () => null });
  await fw.addNetwork(bridgeNet);
  assert.equal(rec.texts.length, 1);
  assert.match(rec.texts[0]!, /^add table inet berth\ndelete table inet berth\n/);
  assert.ok(rec.texts[0]!.includes('set bridges { type ifname; elements = { "berth0" } }'));
  await fw.addPorts(web);
  assert.match(rec.texts[1]!, /^add element/);
});

test('before sync: an existing table is changed incrementally, not replaced', async () => {
  const rec = recorder();
  const fw = new Firewall({ apply: rec.apply, iptables: noIptables, list: async () => ({ nftables: [{ table: { family: 'inet', name: 'berth' } }] }) });
  await fw.addPorts(web);
  assert.equal(rec.texts.length, 1);
  assert.match(rec.texts[0]!, /^add element inet berth pub4_ip/);
  // Without a mirror to rebuild from, a failure is just reported.
  const failing = new Firewall({
    apply: () => {
      throw new Error('refused');
    },
    iptables: noIptables,
    list: async () => ({ nftables: [] }),
  });
  await assert.rejects(failing.addPorts(web), /refused/);
  assert.deepEqual(failing.state(), { networks: [], ports: [] });
});

test('a failed change on a table changed behind our back: one rewrite from state; both failing changes nothing', async () => {
  const texts: string[] = [];
  const warnings: string[] = [];
  let failing = 0;
  const fw = new Firewall({
    apply: (t) => {
      texts.push(t);
      if (failing-- > 0) throw new Error(`refused ${texts.length}`);
    },
    iptables: noIptables,
    warn: (m) => warnings.push(m),
  });
  await fw.sync({ networks: [bridgeNet], ports: [] });
  failing = 1;
  await fw.addPorts(web);
  assert.equal(texts.length, 3);
  assert.match(texts[2]!, /^add table inet berth\ndelete table inet berth\n/);
  assert.ok(texts[2]!.includes('tcp . 8080 : 10.87.0.2 . 80'));
  assert.match(warnings[0]!, /rewrote table inet berth/);

  failing = 2;
  await assert.rejects(fw.removePorts('c1'), (e: Error & { cleanupErrors?: unknown[] }) => e.message === 'refused 4' && e.cleanupErrors?.length === 1);
  assert.deepEqual(fw.state().ports, [web]);
});

function sandboxPorts(id: string, port: number): FirewallPorts {
  return { sandboxId: id, bridge: 'berth0', containerIpv4: '10.87.0.9', mappings: [{ containerPort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: port }] };
}

test('changes queued together go in one transaction; a refused one fails alone', async () => {
  const rec = recorder();
  const fw = new Firewall({ apply: rec.apply, iptables: noIptables });
  await fw.sync({ networks: [bridgeNet], ports: [] });
  const results = await Promise.allSettled([
    fw.addPorts(sandboxPorts('s1', 1001)),
    fw.addPorts(sandboxPorts('s2', 1002)),
    fw.addPorts(sandboxPorts('s3', 1001)),
    fw.addPorts(sandboxPorts('s4', 1004)),
    fw.removePorts('s2'),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  assert.ok(results[2]!.status === 'rejected' && isBerthError(results[2].reason, 'Conflict'));
  assert.equal(rec.texts.length, 2);
  assert.deepEqual(lines(rec.texts[1]!).filter(Boolean), [
    'add element inet berth pub4_any { tcp . 1001 : 10.87.0.9 . 80 }',
    'add element inet berth pub4_any { tcp . 1002 : 10.87.0.9 . 80 }',
    'add element inet berth pub4_any { tcp . 1004 : 10.87.0.9 . 80 }',
    'delete element inet berth pub4_any { tcp . 1002 : 10.87.0.9 . 80 }',
  ]);
  assert.deepEqual(
    fw.state().ports.map((p) => p.sandboxId),
    ['s1', 's4'],
  );
});

test('a merged transaction the kernel refuses is retried change by change', async () => {
  const texts: string[] = [];
  const fw = new Firewall({
    apply: (t) => {
      texts.push(t);
      if (t.includes('. 666 :')) throw new Error('refused 666');
    },
    iptables: noIptables,
  });
  await fw.sync({ networks: [bridgeNet], ports: [] });
  const results = await Promise.allSettled([fw.addPorts(sandboxPorts('good1', 1001)), fw.addPorts(sandboxPorts('bad', 666)), fw.addPorts(sandboxPorts('good2', 1002))]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.ok(results[1]!.status === 'rejected' && /refused 666/.test((results[1].reason as Error).message));
  assert.deepEqual(
    fw.state().ports.map((p) => p.sandboxId),
    ['good1', 'good2'],
  );
  // sync, the merged try, good1, bad (incremental, then the rewrite), good2
  assert.equal(texts.length, 6);
});

test('sync and removeAll wait for queued changes and are never merged', async () => {
  const order: string[] = [];
  const fw = new Firewall({
    apply: async (t) => {
      order.push(t.split('\n')[0]!.split(' ').slice(0, 2).join(' '));
      await new Promise((r) => setTimeout(r, 2));
    },
    iptables: noIptables,
    list: async () => null,
  });
  await fw.sync({ networks: [bridgeNet], ports: [] });
  order.length = 0;
  await Promise.all([fw.addPorts(sandboxPorts('s1', 1)), fw.removeAll(), fw.addPorts(sandboxPorts('s2', 2))]);
  assert.deepEqual(order, ['add element', 'add table', 'add table']);
});

// ---- iptables coexistence, with a fake iptables ----

interface FakeChain {
  policy?: string;
  rules: string[][];
}

function fakeIptables(tables: Partial<Record<'iptables' | 'ip6tables', Record<string, FakeChain>>>): { run: IptablesRunner; calls: string[] } {
  const calls: string[] = [];
  const run: IptablesRunner = async (cmd, args): Promise<CommandResult> => {
    calls.push(`${cmd} ${args.join(' ')}`);
    const chains = tables[cmd];
    if (!chains) return { code: 127, stdout: '', stderr: 'not found' };
    const [w, op, chain, ...spec] = args;
    assert.equal(w, '-w');
    const c = chains[chain!];
    if (!c) return { code: 1, stdout: '', stderr: `iptables: No chain/target/match by that name.` };
    if (op === '-S') {
      const head = c.policy ? `-P ${chain} ${c.policy}` : `-N ${chain}`;
      const body = c.rules.map((r) => `-A ${chain} ${r.map((x) => (x.includes(' ') ? `"${x}"` : x)).join(' ')}`);
      return { code: 0, stdout: [head, ...body, ''].join('\n'), stderr: '' };
    }
    if (op === '-I') {
      c.rules.unshift(spec);
      return { code: 0, stdout: '', stderr: '' };
    }
    if (op === '-D') {
      const i = c.rules.findIndex((r) => r.join(' ') === spec.join(' '));
      if (i < 0) return { code: 1, stdout: '', stderr: 'Bad rule' };
      c.rules.splice(i, 1);
      return { code: 0, stdout: '', stderr: '' };
    }
    throw new Error(`unexpected ${op}`);
  };
  return { run, calls };
}

const foreign = ['-m', 'comment', '--comment', 'netavark firewall plugin rules', '-j', 'NETAVARK_FORWARD'];
const lookalike = ['-i', 'berth+', '-m', 'comment', '--comment', 'berthx', '-j', 'ACCEPT'];

test('iptables: policy ACCEPT → nothing inserted', async () => {
  const { run, calls } = fakeIptables({ iptables: { FORWARD: { policy: 'ACCEPT', rules: [foreign] } } });
  assert.deepEqual(await reconcileIptables({ run, comment: 'berth', interfaces: ['berth+'] }), []);
  assert.ok(calls.every((c) => c.includes(' -S ')));
});

test('iptables: policy DROP → berth accepts inserted at the top of FORWARD, once', async () => {
  const tables = { iptables: { FORWARD: { policy: 'DROP', rules: [foreign] } }, ip6tables: { FORWARD: { policy: 'DROP', rules: [] } } };
  const { run } = fakeIptables(tables);
  await reconcileIptables({ run, comment: 'berth', interfaces: ['berth+', 'mybr'] });
  const expected = [
    ['-i', 'berth+', '-m', 'comment', '--comment', 'berth', '-j', 'ACCEPT'],
    ['-o', 'berth+', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-m', 'comment', '--comment', 'berth', '-j', 'ACCEPT'],
    ['-i', 'mybr', '-m', 'comment', '--comment', 'berth', '-j', 'ACCEPT'],
    ['-o', 'mybr', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-m', 'comment', '--comment', 'berth', '-j', 'ACCEPT'],
  ];
  assert.deepEqual(tables.iptables.FORWARD.rules, [...expected, foreign]);
  assert.deepEqual(tables.ip6tables.FORWARD.rules, expected);
  const { run: again, calls } = fakeIptables(tables);
  await reconcileIptables({ run: again, comment: 'berth', interfaces: ['berth+', 'mybr'] });
  assert.ok(calls.every((c) => c.includes(' -S ')), 'idempotent');
  // A network with a custom bridge went away: only its rules go.
  await reconcileIptables({ run: again, comment: 'berth', interfaces: ['berth+'] });
  assert.deepEqual(tables.iptables.FORWARD.rules, [...expected.slice(0, 2), foreign]);
});

test('iptables: DOCKER-USER is preferred; marked rules elsewhere move there; removal spares foreign rules', async () => {
  const mine = ['-i', 'berth+', '-m', 'comment', '--comment', 'berth', '-j', 'ACCEPT'];
  const tables = {
    iptables: {
      FORWARD: { policy: 'DROP', rules: [['-j', 'DOCKER-USER'], mine, foreign, lookalike] },
      'DOCKER-USER': { rules: [['-j', 'RETURN']] },
    },
  };
  const { run } = fakeIptables(tables);
  assert.deepEqual(await reconcileIptables({ run, comment: 'berth', interfaces: ['berth+'] }), []);
  assert.deepEqual(tables.iptables.FORWARD.rules, [['-j', 'DOCKER-USER'], foreign, lookalike]);
  assert.equal(tables.iptables['DOCKER-USER'].rules.length, 3);
  assert.deepEqual(tables.iptables['DOCKER-USER'].rules[2], ['-j', 'RETURN']);

  await reconcileIptables({ run, comment: 'berth', interfaces: ['berth+'], remove: true });
  assert.deepEqual(tables.iptables['DOCKER-USER'].rules, [['-j', 'RETURN']]);
  assert.deepEqual(tables.iptables.FORWARD.rules, [['-j', 'DOCKER-USER'], foreign, lookalike]);
});

test('iptables: failures are warnings, missing commands are silence', async () => {
  const failing: IptablesRunner = async (cmd, args) =>
    args[1] === '-S'
      ? args[2] === 'FORWARD'
        ? { code: 0, stdout: '-P FORWARD DROP\n', stderr: '' }
        : { code: 1, stdout: '', stderr: 'iptables: No chain/target/match by that name.' }
      : { code: 4, stdout: '', stderr: `${cmd}: Permission denied` };
  const warnings = await reconcileIptables({ run: failing, comment: 'berth', interfaces: ['berth+'] });
  assert.equal(warnings.length, 4);
  assert.match(warnings[0]!, /^iptables -I FORWARD .*Permission denied/);
  assert.deepEqual(await reconcileIptables({ run: noIptables, comment: 'berth', interfaces: ['berth+'] }), []);
});

test('Firewall runs the iptables check on sync and removes its marked rules on removeAll', async () => {
  const tables = { iptables: { FORWARD: { policy: 'DROP', rules: [foreign] } } };
  const { run } = fakeIptables(tables);
  const fw = new Firewall({ apply: () => undefined, iptables: run, table: 'berthtest' });
  await fw.sync({ networks: [bridgeNet], ports: [] });
  assert.equal(tables.iptables.FORWARD.rules.length, 3);
  assert.ok(tables.iptables.FORWARD.rules[0]!.includes('berthtest'));
  await fw.removeAll();
  assert.deepEqual(tables.iptables.FORWARD.rules, [foreign]);
});

test('splitIptablesLine keeps quoted values whole', () => {
  assert.deepEqual(splitIptablesLine('-A FORWARD -m comment --comment "a \\"b\\" c" -j X'), ['-A', 'FORWARD', '-m', 'comment', '--comment', 'a "b" c', '-j', 'X']);
});
