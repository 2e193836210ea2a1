import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExtraHosts, renderHostname, renderHosts, renderResolvConf } from './generated-files.js';

test('hosts: localhost lines, IPv6 lines and ExtraHosts', () => {
  const text = renderHosts({ hostname: 'abc', extraHosts: ['db:10.0.0.5', 'v6:2001:db8::1', 'eq=192.168.0.1'] });
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], '127.0.0.1\tlocalhost');
  assert.equal(lines[1], '::1\tlocalhost ip6-localhost ip6-loopback');
  assert.ok(lines.includes('ff02::2\tip6-allrouters'));
  assert.deepEqual(lines.slice(-3), ['10.0.0.5\tdb', '2001:db8::1\tv6', '192.168.0.1\teq']);
  assert.ok(text.endsWith('\n'));
});

test('hosts: own addresses name the hostname (with the domain first)', () => {
  const text = renderHosts({ hostname: 'web', domainname: 'example.com', addresses: ['172.20.0.2'] });
  assert.match(text, /^172\.20\.0\.2\tweb\.example\.com web$/m);
});

test('hosts: a host-network container starts from the host file', () => {
  const text = renderHosts({ hostname: 'h', networkMode: 'host', hostHosts: '127.0.0.1 localhost\n10.1.1.1 myhost\n\n', extraHosts: ['x:1.2.3.4'] });
  assert.equal(text, '127.0.0.1 localhost\n10.1.1.1 myhost\n1.2.3.4\tx\n');
});

test('ExtraHosts: bad entries are refused by index', () => {
  assert.throws(() => parseExtraHosts(['nohost']), /ExtraHosts\[0\]: invalid extra host/);
  assert.throws(() => parseExtraHosts(['a:1.2.3.4', 'b:not-an-ip']), /ExtraHosts\[1\]: invalid IP address/);
  assert.deepEqual(parseExtraHosts(['v6:[::1]']), [{ name: 'v6', ip: '::1' }]);
});

test('ExtraHosts: host-gateway is the default bridge gateway, refused when there is none', () => {
  assert.deepEqual(parseExtraHosts(['gw:host-gateway'], '10.87.0.1'), [{ name: 'gw', ip: '10.87.0.1' }]);
  assert.equal(renderHosts({ hostname: 'h', extraHosts: ['host.docker.internal:host-gateway'], hostGateway: '10.87.0.1' }).includes('10.87.0.1\thost.docker.internal\n'), true);
  assert.throws(() => renderHosts({ hostname: 'h', extraHosts: ['gw:host-gateway'] }), /host-gateway.*default bridge/);
});

test('hosts: the container\'s addresses name its hostname', () => {
  const text = renderHosts({ hostname: 'web', domainname: 'lan', addresses: ['10.80.0.2', 'fd8b:e47b:0:1::2'] });
  assert.match(text, /\n10\.80\.0\.2\tweb\.lan web\nfd8b:e47b:0:1::2\tweb\.lan web\n$/);
});

test('resolv.conf: loopback nameservers are dropped and Google is the fallback', () => {
  const host = '# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan corp\n';
  assert.equal(renderResolvConf({ hostResolvConf: host }), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan corp\noptions edns0 trust-ad\n');
  const mixed = 'nameserver 127.0.0.1\nnameserver 10.0.0.1\nnameserver ::1\nnameserver 2001:db8::53\n';
  assert.equal(renderResolvConf({ hostResolvConf: mixed }), 'nameserver 10.0.0.1\n');
  assert.equal(renderResolvConf({ hostResolvConf: mixed, ipv6: true }), 'nameserver 10.0.0.1\nnameserver 2001:db8::53\n');
});

test('resolv.conf: host networking copies the host servers, loopback included', () => {
  assert.equal(renderResolvConf({ hostResolvConf: 'nameserver 127.0.0.53\n', networkMode: 'host' }), 'nameserver 127.0.0.53\n');
});

test('resolv.conf: Dns, DnsSearch and DnsOptions replace their lines', () => {
  const text = renderResolvConf({ hostResolvConf: 'nameserver 10.0.0.1\nsearch lan\nsortlist 10.0.0.0/8\n', dns: ['1.1.1.1'], dnsSearch: ['a.example'], dnsOptions: ['ndots:2'] });
  assert.equal(text, 'nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\nsortlist 10.0.0.0/8\n');
  assert.equal(renderResolvConf({ hostResolvConf: 'nameserver 10.0.0.1\nsearch lan\n', dnsSearch: ['.'] }), 'nameserver 10.0.0.1\n');
  assert.throws(() => renderResolvConf({ hostResolvConf: '', dns: ['bogus'] }), /HostConfig.Dns\[0\]/);
});

test('hostname file holds the short name', () => {
  assert.equal(renderHostname('abc'), 'abc\n');
});
