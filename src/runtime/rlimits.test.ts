import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BerthError } from '../errors.js';
import {
  RLIM_INFINITY,
  RLIMITS,
  RLIMIT_NAMES,
  clampRlimits,
  hostHardLimits,
  isUnlimited,
  parseProcLimits,
  readHostRlimits,
  rlimitName,
  rlimitNumber,
} from './rlimits.js';

// /proc/self/limits as this kernel writes it (the nice and rtprio rows have no unit).
const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96365                96365                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`;

describe('rlimit table', () => {
  it('numbers the sixteen Linux resources in order', () => {
    assert.equal(RLIMIT_NAMES.length, 16);
    RLIMIT_NAMES.forEach((name, i) => assert.equal(RLIMITS[name], i));
    assert.equal(RLIMITS.RLIMIT_CPU, 0);
    assert.equal(RLIMITS.RLIMIT_NOFILE, 7);
    assert.equal(RLIMITS.RLIMIT_RTTIME, 15);
  });

  it('maps names to numbers and back', () => {
    assert.equal(rlimitNumber('RLIMIT_NPROC'), 6);
    assert.equal(rlimitNumber('RLIMIT_FOO'), undefined);
    assert.equal(rlimitNumber('toString'), undefined);
    assert.equal(rlimitName(8), 'RLIMIT_MEMLOCK');
    assert.equal(rlimitName(16), undefined);
  });

  it('reads 2^64-1 from JSON as unlimited', () => {
    assert.equal(isUnlimited(JSON.parse('18446744073709551615') as number), true);
    assert.equal(isUnlimited(RLIM_INFINITY), true);
    assert.equal(isUnlimited(2 ** 53), false);
  });
});

describe('parseProcLimits / readHostRlimits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-rlimits-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses every row, with "unlimited" kept as a word', () => {
    const limits = parseProcLimits(LIMITS);
    assert.equal(Object.keys(limits).length, 16);
    assert.deepEqual(limits.RLIMIT_NOFILE, { soft: 20000, hard: 20000 });
    assert.deepEqual(limits.RLIMIT_STACK, { soft: 8388608, hard: 'unlimited' });
    assert.deepEqual(limits.RLIMIT_NICE, { soft: 0, hard: 0 });
    assert.deepEqual(limits.RLIMIT_RTTIME, { soft: 'unlimited', hard: 'unlimited' });
  });

  it('reads <procRoot>/self/limits', () => {
    mkdirSync(join(dir, 'self'));
    writeFileSync(join(dir, 'self', 'limits'), LIMITS);
    assert.deepEqual(readHostRlimits(dir), parseProcLimits(LIMITS));
  });

  it('fails clearly when the file is missing', () => {
    assert.throws(() => readHostRlimits(join(dir, 'nope')), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'Unavailable');
      assert.match(err.message, /^read host resource limits from .*nope\/self\/limits: /);
      return true;
    });
  });

  it('rejects garbage values', () => {
    assert.throws(() => parseProcLimits('Max open files            lots                 20000                files\n'), /cannot parse limit value "lots"/);
  });

  it('parses the real file of this process', () => {
    const limits = readHostRlimits();
    assert.ok(limits.RLIMIT_NOFILE);
  });
});

describe('clampRlimits', () => {
  const host = hostHardLimits(parseProcLimits(LIMITS));

  it('keeps limits within the host hard limit', () => {
    const input = [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 },
      { type: 'RLIMIT_CORE', soft: RLIM_INFINITY, hard: RLIM_INFINITY },
    ];
    const out = clampRlimits(input, host);
    assert.deepEqual(out, { rlimits: input, warnings: [] });
    assert.notEqual(out.rlimits[0], input[0]);
  });

  it('lowers a hard limit above the host one, with a warning naming both values', () => {
    const input = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1048576 }];
    const out = clampRlimits(input, host);
    assert.deepEqual(out.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 20000 }]);
    assert.deepEqual(out.warnings, [
      "RLIMIT_NOFILE: hard limit 1048576 is above the host's hard limit 20000; lowered to 20000 " +
        '(raising a hard limit needs CAP_SYS_RESOURCE, which this host lacks)',
    ]);
    assert.equal(input[0]!.hard, 1048576);
  });

  it('lowers the soft limit too when it would exceed the new hard limit', () => {
    const out = clampRlimits([{ type: 'RLIMIT_MEMLOCK', soft: RLIM_INFINITY, hard: RLIM_INFINITY }], host);
    assert.deepEqual(out.rlimits, [{ type: 'RLIMIT_MEMLOCK', soft: 8388608, hard: 8388608 }]);
    assert.equal(out.warnings.length, 1);
    assert.match(out.warnings[0]!, /^RLIMIT_MEMLOCK: hard limit unlimited is above the host's hard limit 8388608; lowered to 8388608 and soft limit unlimited to 8388608 /);
  });

  it('treats unknown host limits as unlimited', () => {
    const out = clampRlimits([{ type: 'RLIMIT_NOFILE', soft: 5, hard: 5 }], () => 'unlimited');
    assert.deepEqual(out.warnings, []);
    assert.deepEqual(hostHardLimits({})('RLIMIT_NOFILE'), 'unlimited');
  });
});
