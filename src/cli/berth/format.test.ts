import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesSize, ellipsis, humanDuration, humanSize, parseGoDuration, parseRamSize, renderRows, rfc3339NanoFixed, shortId, tabulate } from './format.js';
import { parseTemplate, renderTemplate, TemplateError } from './template.js';
import { psRow } from './containers.js';
import { imageRows } from './images.js';
import { diskUsageRows, formatEvent } from './system.js';
import { cpuPercent, memoryUsage, statsRow } from './stats.js';
import { apiTimestamp } from './logs.js';
import type { ContainerStats, ContainerSummary } from '../../engine/types.js';

test('humanDuration follows go-units', () => {
  const s = 1000;
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1 * s), '1 second');
  assert.equal(humanDuration(3 * s), '3 seconds');
  assert.equal(humanDuration(59 * s), '59 seconds');
  assert.equal(humanDuration(60 * s), 'About a minute');
  assert.equal(humanDuration(119 * s), 'About a minute');
  assert.equal(humanDuration(2 * 60 * s), '2 minutes');
  assert.equal(humanDuration(60 * 60 * s), 'About an hour');
  assert.equal(humanDuration(3 * 3600 * s), '3 hours');
  assert.equal(humanDuration(3 * 86400 * s), '3 days');
  assert.equal(humanDuration(20 * 86400 * s), '2 weeks');
  assert.equal(humanDuration(90 * 86400 * s), '3 months');
  assert.equal(humanDuration(800 * 86400 * s), '2 years');
});

test('sizes: decimal HumanSize, binary BytesSize, and docker size flags', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(4_261_000, 3), '4.26MB');
  assert.equal(humanSize(1_234_567), '1.235MB');
  assert.equal(humanSize(2048), '2.048kB');
  assert.equal(bytesSize(1024), '1KiB');
  assert.equal(bytesSize(1.5 * 2 ** 20), '1.5MiB');
  assert.equal(bytesSize(7.75 * 2 ** 30), '7.75GiB');
  assert.equal(parseRamSize('64m'), 64 * 2 ** 20);
  assert.equal(parseRamSize('1.5g'), 1.5 * 2 ** 30);
  assert.equal(parseRamSize('512'), 512);
  assert.equal(parseRamSize('2GiB'), 2 * 2 ** 30);
  assert.equal(parseRamSize('lots'), undefined);
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('250ms'), 250e6);
  assert.equal(parseGoDuration('1.5h'), 5400e9);
  assert.equal(parseGoDuration('5'), undefined);
});

test('ids, ellipsis, tabwriter', () => {
  assert.equal(shortId('sha256:0123456789abcdef0123'), '0123456789ab');
  assert.equal(ellipsis('sh -c while true; do sleep 1; done', 20), 'sh -c while true; d…');
  assert.equal(ellipsis('short', 20), 'short');
  assert.equal(tabulate([['CONTAINER ID', 'IMAGE', 'NAMES'], ['abc', 'busybox', 'x']]), 'CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n');
  assert.equal(rfc3339NanoFixed(1_700_000_000_000_000_123n), '2023-11-14T22:13:20.000000123Z');
});

test('templates: fields, json, functions, pipes, methods, trimming', () => {
  const obj = { Name: '/web', State: { Status: 'running', Pid: 42 }, Config: { Env: ['A=1', 'B=2'], Labels: { 'com.x': 'y' }, Cmd: null } };
  const r = (t: string, o: unknown = obj): string => renderTemplate(parseTemplate(t), o);
  assert.equal(r('{{.State.Status}}'), 'running');
  assert.equal(r('{{.Name}} {{.State.Pid}}'), '/web 42');
  assert.equal(r('{{json .Config.Env}}'), '["A=1","B=2"]');
  assert.equal(r('{{.Config.Env}}'), '[A=1 B=2]');
  assert.equal(r('{{.Config.Cmd}}'), '<nil>');
  assert.equal(r('{{.Missing}}'), '<no value>');
  assert.equal(r('{{index .Config.Labels "com.x"}}'), 'y');
  assert.equal(r('{{join .Config.Env ","}}'), 'A=1,B=2');
  assert.equal(r('{{.Name | upper}}'), '/WEB');
  assert.equal(r('a  {{- .State.Pid -}}  b'), 'a42b');
  assert.equal(r('{{.Label "k"}}', { Label: (k: unknown) => `label ${String(k)}` }), 'label k');
  assert.equal(r('{{printf "%s:%d" .Name .State.Pid}}'), '/web:42');
  assert.throws(() => parseTemplate('{{range .X}}{{.}}{{end}}'), TemplateError);
  assert.throws(() => parseTemplate('{{nosuch .X}}'), /function "nosuch" not defined/);
  assert.throws(() => parseTemplate('{{.X'), /unclosed action/);
});

const summary: ContainerSummary = {
  Id: 'a'.repeat(64),
  Names: ['/web', '/other/link'],
  Image: 'busybox@sha256:' + 'b'.repeat(64),
  ImageID: 'sha256:' + 'c'.repeat(64),
  Command: 'sh -c while true; do sleep 1; done',
  Created: 1_700_000_000,
  Ports: [],
  Labels: { team: 'db' },
  State: 'running',
  Status: 'Up 3 seconds',
  HostConfig: { NetworkMode: 'none' },
  NetworkSettings: { Networks: { none: { NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', Aliases: null } } },
  Mounts: [],
};

test('ps rows and tables look like docker ps', () => {
  const now = 1_700_000_000_000 + 120_000;
  const row = psRow(summary, { trunc: true, now });
  assert.equal(row.ID, 'aaaaaaaaaaaa');
  assert.equal(row.Image, 'busybox');
  assert.equal(row.Command, '"sh -c while true; d…"');
  assert.equal(row.RunningFor, '2 minutes ago');
  assert.equal(row.Names, 'web');
  assert.equal(row.Networks, 'none');
  assert.equal(row.CreatedAt, '2023-11-14 22:13:20 +0000 UTC');
  const cols: [string, string][] = [['CONTAINER ID', 'ID'], ['IMAGE', 'Image'], ['COMMAND', 'Command'], ['CREATED', 'RunningFor'], ['STATUS', 'Status'], ['PORTS', 'Ports'], ['NAMES', 'Names']];
  assert.equal(
    renderRows([row], { columns: cols }),
    'CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n' +
      'aaaaaaaaaaaa   busybox   "sh -c while true; d…"   2 minutes ago   Up 3 seconds             web\n',
  );
  assert.equal(renderRows([row], { columns: cols, quiet: true }), 'aaaaaaaaaaaa\n');
  assert.equal(renderRows([row], { columns: cols, format: '{{.Names}}\\t{{.Label "team"}}' }), 'web\tdb\n');
  assert.equal(renderRows([row], { columns: cols, format: 'table {{.ID}}\\t{{.Status}}' }), 'CONTAINER ID   STATUS\naaaaaaaaaaaa   Up 3 seconds\n');
  const json = JSON.parse(renderRows([row], { columns: cols, format: 'json' }));
  assert.equal(json.Names, 'web');
  assert.equal(json.Label, undefined);
  const full = psRow(summary, { trunc: false, now });
  assert.equal(full.ID, 'a'.repeat(64));
  assert.equal(full.Names, 'web,other/link');
});

test('images rows: one per tag, <none> for dangling, digests', () => {
  const rows = imageRows(
    [
      { Id: 'sha256:' + 'd'.repeat(64), ParentId: '', RepoTags: ['busybox:latest', 'busybox:1'], RepoDigests: ['busybox@sha256:' + 'e'.repeat(64)], Created: 1_700_000_000, Size: 4_261_000, SharedSize: -1, Labels: {}, Containers: -1 },
      { Id: 'sha256:' + 'f'.repeat(64), ParentId: '', RepoTags: [], RepoDigests: [], Created: 1_700_000_000, Size: 100, SharedSize: -1, Labels: {}, Containers: -1 },
    ],
    { trunc: true, digests: true, now: 1_700_000_000_000 + 3 * 86400_000 },
  );
  assert.deepEqual(
    rows.map((r) => [r.Repository, r.Tag, r.ID, r.Digest, r.CreatedSince, r.Size]),
    [
      ['busybox', 'latest', 'dddddddddddd', 'sha256:' + 'e'.repeat(64), '3 days ago', '4.26MB'],
      ['busybox', '1', 'dddddddddddd', 'sha256:' + 'e'.repeat(64), '3 days ago', '4.26MB'],
      ['<none>', '<none>', 'ffffffffffff', '<none>', '3 days ago', '100B'],
    ],
  );
});

test('system df arithmetic and event lines', () => {
  const rows = diskUsageRows({
    LayersSize: 1000,
    Images: [{ Id: 'x', ParentId: '', RepoTags: [], RepoDigests: [], Created: 0, Size: 600, SharedSize: 0, Labels: {}, Containers: 1 }],
    Containers: [{ ...summary, State: 'exited', SizeRw: 50 }],
    Volumes: [{ Name: 'v', Driver: 'local', Mountpoint: '', CreatedAt: '', Labels: {}, Scope: 'local', Options: {}, UsageData: { Size: 10, RefCount: 0 } }],
  });
  assert.deepEqual(rows[0], { Type: 'Images', TotalCount: '1', Active: '1', Size: '1kB', Reclaimable: '400B (40%)' });
  assert.deepEqual(rows[1], { Type: 'Containers', TotalCount: '1', Active: '0', Size: '50B', Reclaimable: '50B (100%)' });
  assert.deepEqual(rows[2], { Type: 'Local Volumes', TotalCount: '1', Active: '0', Size: '10B', Reclaimable: '10B (100%)' });
  assert.equal(
    formatEvent({ Type: 'container', Action: 'start', Actor: { ID: 'abc', Attributes: { name: 'web', image: 'busybox' } }, scope: 'local', time: 1_700_000_000, timeNano: 1_700_000_000_000_000_000 }),
    '2023-11-14T22:13:20.000000000Z container start abc (image=busybox, name=web)\n',
  );
});

test('stats: docker CPU and memory arithmetic', () => {
  const s = {
    id: 'a'.repeat(64),
    name: '/web',
    read: '',
    preread: '',
    pids_stats: { current: 3 },
    num_procs: 0,
    cpu_stats: { cpu_usage: { total_usage: 2_000, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 20_000, online_cpus: 2, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    precpu_stats: { cpu_usage: { total_usage: 1_000, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 10_000, online_cpus: 2, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    memory_stats: { usage: 3 * 2 ** 20, limit: 100 * 2 ** 20, stats: { inactive_file: 2 ** 20 } },
    blkio_stats: { io_service_bytes_recursive: [{ major: 8, minor: 0, op: 'read', value: 2000 }, { major: 8, minor: 0, op: 'write', value: 1000 }] },
    networks: { eth0: { rx_bytes: 1500, tx_bytes: 500 } },
    storage_stats: {},
  } as ContainerStats;
  assert.equal(cpuPercent(s), 20);
  assert.equal(memoryUsage(s), 2 * 2 ** 20);
  assert.deepEqual(statsRow(s), { ID: 'aaaaaaaaaaaa', Container: 'aaaaaaaaaaaa', Name: 'web', CPUPerc: '20.00%', MemUsage: '2MiB / 100MiB', MemPerc: '2.00%', NetIO: '1.5kB / 500B', BlockIO: '2kB / 1kB', PIDs: '3' });
});

test('log and event times: durations, unix times and RFC 3339', () => {
  const now = 1_700_000_000_000;
  assert.equal(apiTimestamp('1699999999.5', now), '1699999999.5');
  assert.equal(apiTimestamp('10m', now), '1699999400.000000000');
  assert.equal(apiTimestamp('2023-11-14T22:13:20Z', now), '1700000000.000000000');
  assert.equal(apiTimestamp('2023-11-14T22:13:20.25Z', now), '1700000000.250000000');
  assert.equal(apiTimestamp('2023-11-14', now), '1699920000.000000000');
  assert.equal(apiTimestamp('yesterday', now), undefined);
});
