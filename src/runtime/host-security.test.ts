import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BerthError } from '../errors.js';
import { defaultSpec } from './default-spec.js';
import { apparmorEnabled, checkSecurityModules, selinuxEnabled } from './host-security.js';

describe('host security modules', () => {
  const top = mkdtempSync(join(tmpdir(), 'berth-lsm-'));
  after(() => rmSync(top, { recursive: true, force: true }));

  function host(name: string, files: Record<string, string | null>): string {
    const root = join(top, name);
    for (const [path, content] of Object.entries(files)) {
      const full = join(root, path);
      if (content === null) mkdirSync(full, { recursive: true });
      else {
        mkdirSync(join(full, '..'), { recursive: true });
        writeFileSync(full, content);
      }
    }
    mkdirSync(root, { recursive: true });
    return root;
  }

  const bare = host('bare', {});
  const apparmor = host('apparmor', {
    'sys/module/apparmor/parameters/enabled': 'Y\n',
    'sys/kernel/security/apparmor': null,
  });
  const apparmorOff = host('apparmor-off', {
    'sys/module/apparmor/parameters/enabled': 'N\n',
    'sys/kernel/security/apparmor': null,
  });
  const apparmorNoFs = host('apparmor-nofs', { 'sys/module/apparmor/parameters/enabled': 'Y\n' });
  const selinux = host('selinux', { 'sys/fs/selinux/enforce': '0\n' });

  it('detects AppArmor only when enabled and its securityfs directory exists', () => {
    assert.equal(apparmorEnabled(apparmor), true);
    assert.equal(apparmorEnabled(apparmorOff), false);
    assert.equal(apparmorEnabled(apparmorNoFs), false);
    assert.equal(apparmorEnabled(bare), false);
  });

  it('detects SELinux by selinuxfs (permissive counts)', () => {
    assert.equal(selinuxEnabled(selinux), true);
    assert.equal(selinuxEnabled(bare), false);
  });

  it('passes specs that ask for nothing', () => {
    checkSecurityModules(defaultSpec(), bare);
  });

  it('fails a profile or label the host cannot apply', () => {
    const spec = defaultSpec();
    spec.process!.apparmorProfile = 'docker-default';
    assert.throws(() => checkSecurityModules(spec, bare), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'FailedPrecondition');
      assert.equal(err.message, 'process.apparmorProfile "docker-default": AppArmor is not enabled on this host');
      return true;
    });
    checkSecurityModules(spec, apparmor);

    const labelled = defaultSpec();
    labelled.process!.selinuxLabel = 'system_u:system_r:container_t:s0';
    assert.throws(() => checkSecurityModules(labelled, bare), {
      message: 'process.selinuxLabel "system_u:system_r:container_t:s0": SELinux is not enabled on this host',
    });
    checkSecurityModules(labelled, selinux);

    const mountLabelled = defaultSpec();
    mountLabelled.linux!.mountLabel = 'system_u:object_r:container_file_t:s0';
    assert.throws(() => checkSecurityModules(mountLabelled, apparmor), {
      message: 'linux.mountLabel "system_u:object_r:container_file_t:s0": SELinux is not enabled on this host',
    });
  });
});
