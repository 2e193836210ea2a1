// Networks through the real docker CLI (and docker-compose) against a private berthd whose
// network layer uses test-only names: default bridge berthtst-en0 on 10.199.96.0/24, user
// networks on 10.199.97-101.0/24, nft table berthtstengnet, DNS on an ephemeral port with a
// silent stub upstream on 127.0.0.1. Traffic goes only to 127.0.0.1, to this test's bridge
// gateway (the host's own address on it) and to this test's containers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { apiRequest, berthdSkipReason, dockerCli, startBerthd, type ApiResponse, type Berthd } from './helpers/berthd.js';
import { runCommand, waitFor, type RunResult } from './helpers/runtime.js';

const TABLE = 'berthtstengnet';
const BRIDGE = 'berthtst-en0';
const GATEWAY = '10.199.96.1';
const IMAGE = 'berthtst/bb:1';

let netlink: typeof import('../src/host/netlink.js') | undefined;
try {
  netlink = await import('../src/host/netlink.js');
} catch {
  netlink = undefined;
}

function skipReason(): string | false {
  const base = berthdSkipReason();
  if (base) return base;
  if (!dockerCli()) return 'the docker CLI is not installed';
  const why = netlink ? netlink.netlinkAvailable() : 'src/host/netlink.js did not load';
  if (why) return `netlink: ${why}`;
  if (!existsSync('/usr/sbin/nft') && !existsSync('/sbin/nft')) return 'nft is not installed';
  return false;
}
const skip = skipReason();

let d: Berthd;
let stub: Socket;
let hostServer: Server;
let hostPort = 0;

function docker(args: string[], opts: { timeoutMs?: number; cwd?: string; bin?: string } = {}): Promise<RunResult> {
  return runCommand(opts.bin ?? dockerCli()!, args, d.work, {
    cwd: opts.cwd ?? d.work,
    timeoutMs: opts.timeoutMs ?? 60_000,
    env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: join(d.work, 'docker-config'), DOCKER_CLI_HINTS: 'false' },
  });
}

async function ok(args: string[], opts?: { timeoutMs?: number; cwd?: string; bin?: string }): Promise<string> {
  const r = await docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

function api(method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return apiRequest(d.socket, method, path, body);
}

/** GET from the host; undefined when it cannot connect. */
function fetchText(url: string, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createTcpServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The veths on this test's bridges, and this test's netns pins. */
function ourLinks(bridges: Set<string>): string[] {
  return (netlink?.listLinks() ?? []).filter((l) => bridges.has(l.name) || (l.master !== undefined && bridges.has(l.master))).map((l) => l.name);
}

function pins(): string[] {
  try {
    return readdirSync(join(d.runRoot, 'netns'));
  } catch {
    return [];
  }
}

function nftTable(): string {
  try {
    return execFileSync('nft', ['list', 'table', 'inet', TABLE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

const httpd = ['busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'];

/**
 * A shell command that succeeds when a TCP connection to ip:port opens within 2 s. (busybox's
 * `timeout` does not stop anything inside these containers, and `wget -T` crashes.)
 */
function connects(ip: string, port: number): string {
  return `echo | busybox nc -w 2 ${ip} ${port}`;
}

describe('networks through the docker CLI', { skip, concurrency: false }, () => {
  before(async () => {
    stub = createSocket('udp4');
    await new Promise<void>((r) => stub.bind(0, '127.0.0.1', () => r()));
    d = await startBerthd({
      label: 'engnet',
      network: { defaultBridge: { subnet: '10.199.96.0/24', bridge: BRIDGE }, dnsPort: 0, upstreams: [{ address: '127.0.0.1', port: stub.address().port }], nftTable: TABLE },
    });
    const { makeRootfs } = await import('./helpers/bundle.js');
    const rootfs = join(d.work, 'rootfs');
    makeRootfs(rootfs);
    execFileSync('tar', ['-C', rootfs, '-cf', join(d.work, 'rootfs.tar'), '.']);
    rmSync(rootfs, { recursive: true, force: true });
    await ok(['import', '--change', 'CMD ["/bin/sh"]', join(d.work, 'rootfs.tar'), IMAGE]);
    // A server on the host's address on the test bridge: what containers reach "outside".
    hostServer = createServer((_req, res) => res.end('host-ok'));
    await new Promise<void>((r) => hostServer.listen(0, GATEWAY, () => r()));
    hostPort = (hostServer.address() as { port: number }).port;
  });

  after(async () => {
    hostServer?.close();
    stub?.close();
    if (!d) return;
    // stop() removes the containers and networks, the bridge and the nft table, and reports
    // any veth, netns pin, mount, cgroup or process left behind.
    assert.deepEqual(await d.stop(), []);
  });

  it('names resolve within a user network and not across; published ports answer on 127.0.0.1 and the host address', async () => {
    await ok(['network', 'create', '--subnet', '10.199.97.0/24', 'tst-front']);
    await ok(['network', 'create', '--subnet', '10.199.98.0/24', '--label', 'tier=back', 'tst-back']);
    const port = await freePort();
    const all = await freePort('0.0.0.0');
    const id = await ok(['run', '-d', '--name', 'tst-web', '--network', 'tst-front', '--network-alias', 'www', '-p', `127.0.0.1:${port}:80`, '-p', `${all}:80`, IMAGE, ...httpd]);
    const short = id.slice(0, 12);
    assert.equal(await ok(['run', '--rm', '--network', 'tst-front', IMAGE, 'busybox', 'wget', '-qO-', 'http://www/hostname']), short);
    assert.equal(await ok(['run', '--rm', '--network', 'tst-front', IMAGE, 'busybox', 'wget', '-qO-', 'http://tst-web/hostname']), short);
    assert.equal(await ok(['run', '--rm', '--network', 'tst-front', IMAGE, 'busybox', 'wget', '-qO-', `http://${short}/hostname`]), short);
    const ip = await ok(['inspect', '-f', '{{(index .NetworkSettings.Networks "tst-front").IPAddress}}', 'tst-web']);
    assert.match(ip, /^10\.199\.97\.\d+$/);
    const across = await docker(['run', '--rm', '--network', 'tst-back', IMAGE, 'sh', '-c', `busybox nslookup tst-web 10.199.98.1; ${connects(ip, 80)}`]);
    assert.notEqual(across.code, 0, 'another network reaches the container');
    assert.doesNotMatch(across.stdout, new RegExp(short));
    assert.equal(await fetchText(`http://127.0.0.1:${port}/hostname`), `${short}\n`);
    assert.equal(await fetchText(`http://127.0.0.1:${all}/hostname`), `${short}\n`);
    assert.equal(await fetchText(`http://${GATEWAY}:${all}/hostname`), `${short}\n`, 'published on all addresses: reachable on the host address');
    assert.equal(await fetchText(`http://${GATEWAY}:${port}/hostname`, 1500), undefined, 'published on 127.0.0.1 only');
    const portOut = await ok(['port', 'tst-web', '80']);
    assert.match(portOut, new RegExp(`127\\.0\\.0\\.1:${port}`));
    const ps = await ok(['ps', '--filter', 'network=tst-front', '--filter', 'publish=80', '--format', '{{.Names}} {{.Ports}}']);
    assert.match(ps, new RegExp(`tst-web .*127\\.0\\.0\\.1:${port}->80/tcp`));
    const net = JSON.parse(await ok(['network', 'inspect', 'tst-front'])) as { Containers: Record<string, { Name: string; IPv4Address: string }> }[];
    assert.deepEqual(net[0]!.Containers[id], { ...net[0]!.Containers[id]!, Name: 'tst-web', IPv4Address: `${ip}/24` });
    assert.deepEqual((await ok(['network', 'ls', '--filter', 'label=tier=back', '--format', '{{.Name}}'])).split('\n'), ['tst-back']);
  });

  it('-P publishes the exposed ports on random host ports, shown by inspect and docker port', async () => {
    await ok(['run', '-d', '--name', 'tst-pub', '-P', '--expose', '80', '--expose', '9999/udp', IMAGE, ...httpd]);
    const ports = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'tst-pub'])) as Record<string, { HostIp: string; HostPort: string }[]>;
    assert.deepEqual(Object.keys(ports).sort(), ['80/tcp', '9999/udp']);
    const hp = Number(ports['80/tcp']![0]!.HostPort);
    assert.ok(hp > 0);
    assert.match(await ok(['port', 'tst-pub']), new RegExp(`80/tcp -> 0\\.0\\.0\\.0:${hp}`));
    assert.match((await fetchText(`http://127.0.0.1:${hp}/hostname`)) ?? '', /^[0-9a-f]{12}\n$/);
    await ok(['rm', '-f', 'tst-pub']);
    assert.equal(await fetchText(`http://127.0.0.1:${hp}/hostname`, 1500), undefined, 'the mapping went with the container');
  });

  it('an internal network has no way out; the default bridge has', async () => {
    assert.equal(await ok(['run', '--rm', IMAGE, 'busybox', 'wget', '-qO-', `http://${GATEWAY}:${hostPort}/`]), 'host-ok');
    await ok(['network', 'create', '--internal', '--subnet', '10.199.99.0/24', 'tst-int']);
    const r = await docker(['run', '--rm', '--network', 'tst-int', IMAGE, 'sh', '-c', connects(GATEWAY, hostPort)]);
    assert.notEqual(r.code, 0, `an internal network reached the host: ${r.stdout}`);
    assert.equal(JSON.parse(await ok(['network', 'inspect', '-f', '{{json .Internal}}', 'tst-int'])), true);
  });

  it('connect and disconnect a running container', async () => {
    await ok(['network', 'connect', '--alias', 'web2', 'tst-back', 'tst-web']);
    // Seen from a container sharing its network namespace (run is what this test trusts for output).
    const links = await ok(['run', '--rm', '--network', 'container:tst-web', IMAGE, 'busybox', 'ip', 'addr']);
    assert.match(links, /eth1/);
    // Sharing tst-web's network means sharing its names: its hosts file and its resolver.
    const files = await ok(['run', '--rm', '--network', 'container:tst-web', IMAGE, 'sh', '-c', 'cat /etc/hosts /etc/resolv.conf; busybox nslookup tst-web']);
    assert.match(files, /10\.199\.97\.\d+\s+\S+/);
    assert.match(files, /nameserver 10\.199\.97\.1/);
    assert.match(files, /Name:\s+tst-web/);
    const backIp = await ok(['inspect', '-f', '{{(index .NetworkSettings.Networks "tst-back").IPAddress}}', 'tst-web']);
    assert.match(backIp, /^10\.199\.98\.\d+$/);
    const short = (await ok(['inspect', '-f', '{{.Id}}', 'tst-web'])).slice(0, 12);
    assert.equal(await ok(['run', '--rm', '--network', 'tst-back', IMAGE, 'busybox', 'wget', '-qO-', 'http://web2/hostname']), short);
    const again = await docker(['network', 'connect', 'tst-back', 'tst-web']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already exists in network tst-back/);
    await ok(['network', 'disconnect', 'tst-back', 'tst-web']);
    assert.doesNotMatch(await ok(['run', '--rm', '--network', 'container:tst-web', IMAGE, 'busybox', 'ip', 'addr']), /eth1/);
    const gone = await docker(['run', '--rm', '--network', 'tst-back', IMAGE, 'sh', '-c', connects(backIp, 80)]);
    assert.notEqual(gone.code, 0);
    const rm = await docker(['network', 'rm', 'tst-front']);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /active endpoints/);
  });

  it('a restart of the daemon keeps connectivity, mappings and names', async () => {
    const port = Number(JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'tst-web']))['80/tcp'].find((b: { HostIp: string }) => b.HostIp === '127.0.0.1').HostPort);
    const before = await fetchText(`http://127.0.0.1:${port}/hostname`);
    assert.ok(before);
    await d.kill();
    assert.equal(await fetchText(`http://127.0.0.1:${port}/hostname`), before, 'the mapping works while the daemon is down');
    await d.restart();
    assert.equal(await fetchText(`http://127.0.0.1:${port}/hostname`), before);
    assert.equal(`${await ok(['run', '--rm', '--network', 'tst-front', IMAGE, 'busybox', 'wget', '-qO-', 'http://www/hostname'])}\n`, before);
    const ports = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'tst-web'])) as Record<string, unknown[]>;
    assert.equal(ports['80/tcp']!.length, 2);
  });

  it('bad input: overlapping subnet, address outside the subnet, a published port taken, an unknown network', async () => {
    const linksBefore = netlink!.listLinks().length;
    const pinsBefore = pins().length;
    const overlap = await docker(['network', 'create', '--subnet', '10.199.97.128/25', 'tst-overlap']);
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /overlap/i);
    assert.match(overlap.stderr, /tst-front/);
    const outside = await docker(['run', '--rm', '--network', 'tst-front', '--ip', '10.199.50.5', IMAGE, 'true']);
    assert.notEqual(outside.code, 0);
    assert.match(outside.stderr, /10\.199\.50\.5.*does not belong/);
    const port = await freePort();
    await ok(['run', '-d', '--name', 'tst-p1', '-p', `127.0.0.1:${port}:80`, IMAGE, ...httpd]);
    const taken = await docker(['run', '-d', '--name', 'tst-p2', '-p', `127.0.0.1:${port}:80`, IMAGE, ...httpd]);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, new RegExp(`${port}`));
    assert.equal(await ok(['inspect', '-f', '{{.State.Running}}', 'tst-p2']), 'false');
    await ok(['rm', '-f', 'tst-p1', 'tst-p2']);
    const unknown = await docker(['run', '--rm', '--network', 'tst-nope', IMAGE, 'true']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /network tst-nope not found/);
    assert.doesNotMatch(unknown.stderr, /Unable to find image/);
    assert.doesNotMatch(await ok(['network', 'ls', '--format', '{{.Name}}']), /tst-overlap/);
    assert.equal(netlink!.listLinks().length, linksBefore, 'links left by the failures');
    assert.equal(pins().length, pinsBefore, 'netns pins left by the failures');
  });

  it('50 containers on one network, then removed: no veth, pin, nft element or DNS name left', async () => {
    const created = JSON.parse(await ok(['network', 'inspect', 'tst-back'])) as { Id: string }[];
    const bridge = `berth-${created[0]!.Id.slice(0, 9)}`;
    assert.deepEqual(ourLinks(new Set([bridge])), [bridge], `veths on the network before the test; its endpoints: ${await ok(['network', 'inspect', '-f', '{{json .Containers}}', 'tst-back'])}`);
    const ids: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const made = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const name = `tst-many-${batch * 10 + i}`;
          const c = await api('POST', `/containers/create?name=${name}`, { Image: IMAGE, Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'tst-back' } });
          assert.equal(c.status, 201, c.body.toString());
          const id = c.json<{ Id: string }>().Id;
          const s = await api('POST', `/containers/${id}/start`);
          assert.equal(s.status, 204, s.body.toString());
          return id;
        }),
      );
      ids.push(...made);
    }
    const inspect = JSON.parse(await ok(['network', 'inspect', 'tst-back'])) as { Containers: Record<string, unknown> }[];
    assert.equal(Object.keys(inspect[0]!.Containers).length, 50);
    assert.equal(ourLinks(new Set([bridge])).filter((l) => l !== bridge).length, 50);
    assert.match(await ok(['run', '--rm', '--network', 'tst-back', IMAGE, 'busybox', 'nslookup', 'tst-many-37', '10.199.98.1']), /Address: 10\.199\.98\.\d+/);
    await Promise.all(ids.map(async (id) => assert.equal((await api('DELETE', `/containers/${id}?force=1`)).status, 204)));
    assert.deepEqual(ourLinks(new Set([bridge])), [bridge]);
    assert.deepEqual(Object.keys((JSON.parse(await ok(['network', 'inspect', 'tst-back'])) as { Containers: Record<string, unknown> }[])[0]!.Containers), []);
    const lookup = await docker(['run', '--rm', '--network', 'tst-back', IMAGE, 'busybox', 'nslookup', 'tst-many-37', '10.199.98.1']);
    assert.doesNotMatch(lookup.stdout, /Address: 10\.199\.98\.\d+\n*$/, 'the DNS name outlived its container');
    const table = nftTable();
    for (const id of ids) assert.doesNotMatch(table, new RegExp(id.slice(0, 12)));
    const running = (await api('GET', '/containers/json')).json<unknown[]>().length;
    assert.equal(pins().length, running, 'one netns pin per running container');
  });

  it('IPv6 on a user network (AAAA names), and a restart policy gets the network again at each restart', async () => {
    await ok(['network', 'create', '--ipv6', '--subnet', '10.199.100.0/24', '--subnet', 'fd8b:e47b:0:c7::/64', 'tst-v6']);
    const id = await ok(['run', '-d', '--name', 'tst-v6a', '--network', 'tst-v6', IMAGE, ...httpd]);
    const v6 = await ok(['inspect', '-f', '{{(index .NetworkSettings.Networks "tst-v6").GlobalIPv6Address}}', id]);
    assert.match(v6, /^fd8b:e47b:0:c7::[0-9a-f]+$/);
    const script = 'a=$(busybox nslookup -type=AAAA tst-v6a 10.199.100.1 | busybox grep -o "fd8b:[0-9a-f:]*" | busybox tail -1); echo "$a"; busybox wget -qO- "http://[$a]/hostname"';
    assert.deepEqual((await ok(['run', '--rm', '--network', 'tst-v6', IMAGE, 'sh', '-c', script])).split('\n'), [v6, id.slice(0, 12)]);
    await ok(['run', '-d', '--name', 'tst-restart', '--restart', 'on-failure:2', '--network', 'tst-v6', IMAGE, 'sh', '-c', 'busybox ip addr show eth0 | busybox grep "inet "; exit 3']);
    await waitFor('two restarts', async () => ((await ok(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'tst-restart'])) === '2 exited' ? true : undefined), 30_000);
    const logs = await ok(['logs', 'tst-restart']);
    assert.equal(logs.split('\n').filter((l) => /inet 10\.199\.100\.\d+\/24/.test(l)).length, 3, logs);
    await ok(['rm', '-f', 'tst-v6a', 'tst-restart']);
    await ok(['network', 'rm', 'tst-v6']);
  });

  it('a cni network: containers get their address from the plugin chain and are reachable on it', async (t) => {
    if (!existsSync('/usr/lib/cni/bridge') || !existsSync('/usr/lib/cni/host-local')) return t.skip('Debian containernetworking-plugins are not installed');
    const dir = join(d.work, 'cni');
    mkdirSync(dir, { recursive: true });
    const bridge = 'berthtst-encni';
    writeFileSync(
      join(dir, 'tst.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'tst-cni',
        plugins: [{ type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet: '10.199.102.0/24', dataDir: join(dir, 'ipam') } }],
      }),
    );
    try {
      await ok(['network', 'create', '-d', 'cni', '-o', `conflist=${join(dir, 'tst.conflist')}`, 'tst-cni']);
      await ok(['run', '-d', '--name', 'tst-cweb', '--network', 'tst-cni', IMAGE, ...httpd]);
      const ip = await ok(['inspect', '-f', '{{(index .NetworkSettings.Networks "tst-cni").IPAddress}}', 'tst-cweb']);
      assert.match(ip, /^10\.199\.102\.\d+$/);
      const short = (await ok(['inspect', '-f', '{{.Id}}', 'tst-cweb'])).slice(0, 12);
      assert.equal(await waitFor('the server on the cni address', () => fetchText(`http://${ip}/hostname`)), `${short}\n`);
      await ok(['rm', '-f', 'tst-cweb']);
      assert.deepEqual(readdirSync(join(dir, 'ipam', 'tst-cni')).filter((f) => /^\d/.test(f)), [], 'host-local released the address');
      await ok(['network', 'rm', 'tst-cni']);
    } finally {
      // The bridge plugin leaves its bridge behind on DEL, by design.
      netlink?.deleteLink(bridge);
    }
  });

  it('docker-compose brings up two services that find each other by name', async (t) => {
    if (!existsSync('/usr/bin/docker-compose')) return t.skip('docker-compose is not installed (apt-get install docker-compose)');
    const dir = join(d.work, 'app');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'docker-compose.yml'),
      `version: "3"
services:
  web:
    image: ${IMAGE}
    command: ${JSON.stringify(httpd)}
  client:
    image: ${IMAGE}
    depends_on: [web]
    command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://web/hostname && echo CLIENT-OK && exit 0; sleep 0.3; done; exit 1"]
networks:
  default:
    ipam:
      config:
        - subnet: 10.199.101.0/24
`,
    );
    const compose = (args: string[]): Promise<RunResult> => docker(['-p', 'tstapp', ...args], { cwd: dir, bin: '/usr/bin/docker-compose', timeoutMs: 120_000 });
    const up = await compose(['up', '--abort-on-container-exit', '--exit-code-from', 'client']);
    const down = await compose(['down']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /CLIENT-OK/);
    assert.equal(down.code, 0, down.stderr);
    assert.doesNotMatch(await ok(['network', 'ls', '--format', '{{.Name}}']), /tstapp_default/);
  });
});
