import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BerthError } from '../../errors.js';
import { compareCniVersions, loadConflist, parseConflist } from './conflist.js';

function assertInvalid(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.code, 'InvalidArgument');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

const LIST = {
  cniVersion: '1.0.0',
  name: 'mynet',
  plugins: [
    { type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.1.0.0/24' } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
};

describe('parseConflist', () => {
  it('parses a conflist and copies its plugins', () => {
    const text = JSON.stringify(LIST);
    const c = parseConflist(text, '/etc/cni/net.d/10-my.conflist');
    assert.deepEqual(c, { cniVersion: '1.0.0', name: 'mynet', plugins: LIST.plugins });
    c.plugins[0]!.bridge = 'changed';
    assert.equal(LIST.plugins[0]!.bridge, 'cni0');
  });

  it('wraps a single .conf into a list of one, without the list fields in the plugin', () => {
    const c = parseConflist(JSON.stringify({ cniVersion: '0.4.0', name: 'one', type: 'bridge', bridge: 'b0', disableCheck: 'true' }), 'one.conf');
    assert.deepEqual(c, { cniVersion: '0.4.0', name: 'one', disableCheck: true, plugins: [{ type: 'bridge', bridge: 'b0' }] });
  });

  it('accepts disableCheck as a boolean or as the string of 0.4.0', () => {
    assert.equal(parseConflist(JSON.stringify({ ...LIST, disableCheck: true }), 'x').disableCheck, true);
    assert.equal(parseConflist(JSON.stringify({ ...LIST, disableCheck: 'false' }), 'x').disableCheck, false);
    assert.equal(parseConflist(JSON.stringify(LIST), 'x').disableCheck, undefined);
    assertInvalid(() => parseConflist(JSON.stringify({ ...LIST, disableCheck: 'yes' }), 'x'), /disableCheck: must be true or false, got "yes"/);
  });

  it('names the file in a JSON error', () => {
    assertInvalid(() => parseConflist('{"name": ', '/etc/cni/net.d/bad.conflist'), /CNI configuration \/etc\/cni\/net\.d\/bad\.conflist: invalid JSON/);
    assertInvalid(() => parseConflist('[1]', 'arr.conflist'), /arr\.conflist: must be a JSON object, got an array/);
  });

  it('names the field path of a missing plugin type', () => {
    const doc = { ...LIST, plugins: [LIST.plugins[0], { capabilities: { portMappings: true } }] };
    assertInvalid(() => parseConflist(JSON.stringify(doc), 'f.conflist'), /^CNI configuration f\.conflist: plugins\[1\]\.type: missing$/);
  });

  it('reports every problem at once', () => {
    const doc = { name: '-bad', cniVersion: '9.9.9', plugins: [{ type: '../../bin/sh' }, 3, { type: 'x', capabilities: { portMappings: 'yes' }, ipam: {} }] };
    assertInvalid(
      () => parseConflist(JSON.stringify(doc), 'f'),
      /name: "-bad" must start with a letter or digit/,
      /cniVersion: "9\.9\.9" is not a CNI version berth knows/,
      /plugins\[0\]\.type: "\.\.\/\.\.\/bin\/sh" must be a file name in the plugin directories, not a path/,
      /plugins\[1\]: must be an object, got a number/,
      /plugins\[2\]\.capabilities\.portMappings: must be true or false, got a string/,
      /plugins\[2\]\.ipam\.type: missing/,
    );
  });

  it('refuses missing and empty fields', () => {
    assertInvalid(() => parseConflist('{}', 'f'), /name: missing/, /cniVersion: missing/, /plugins: missing/);
    assertInvalid(() => parseConflist(JSON.stringify({ ...LIST, plugins: [] }), 'f'), /plugins: must name at least one plugin/);
    assertInvalid(() => parseConflist(JSON.stringify({ ...LIST, plugins: {} }), 'f'), /plugins: must be an array, got a object/);
    assertInvalid(() => parseConflist(JSON.stringify({ ...LIST, name: 5 }), 'f'), /name: must be a string, got a number/);
    assertInvalid(() => parseConflist(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: '' }), 'one.conf'), /^CNI configuration one\.conf: type: must not be empty$/);
    assertInvalid(() => parseConflist(JSON.stringify({ ...LIST, plugins: [{ type: 'x', runtimeConfig: [] }] }), 'f'), /plugins\[0\]\.runtimeConfig: must be an object/);
  });

  it('refuses a chain under a version without chaining', () => {
    assertInvalid(() => parseConflist(JSON.stringify({ ...LIST, cniVersion: '0.2.0' }), 'f'), /cniVersion: "0\.2\.0" has no plugin chaining/);
    assert.equal(parseConflist(JSON.stringify({ cniVersion: '0.2.0', name: 'n', type: 'bridge' }), 'f').plugins.length, 1);
  });
});

describe('loadConflist', () => {
  it('reads a file, and a missing one is NotFound naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-conflist-'));
    try {
      const p = join(dir, 'a.conflist');
      writeFileSync(p, JSON.stringify(LIST));
      assert.equal(loadConflist(p).name, 'mynet');
      assert.throws(() => loadConflist(join(dir, 'nope.conflist')), (err: unknown) => {
        assert.ok(err instanceof BerthError);
        assert.equal(err.code, 'NotFound');
        assert.match(err.message, /nope\.conflist: cannot read it: ENOENT/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('compareCniVersions', () => {
  it('orders versions numerically', () => {
    assert.ok(compareCniVersions('0.4.0', '0.3.1') > 0);
    assert.ok(compareCniVersions('0.10.0', '0.4.0') > 0);
    assert.equal(compareCniVersions('1.0.0', '1.0.0'), 0);
    assert.ok(compareCniVersions('0.3.1', '1.0.0') < 0);
  });
});
