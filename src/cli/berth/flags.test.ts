import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Flags, parseCommandLine, UsageError, type CommandSpec } from './flags.js';

const spec: CommandSpec = {
  name: 'run',
  usage: '[OPTIONS] IMAGE',
  summary: 'x',
  stopAtPositional: true,
  minArgs: 1,
  flags: [
    { long: 'detach', short: 'd', kind: 'bool', help: '' },
    { long: 'interactive', short: 'i', kind: 'bool', help: '' },
    { long: 'tty', short: 't', kind: 'bool', help: '' },
    { long: 'env', short: 'e', kind: 'list', help: '' },
    { long: 'name', kind: 'string', help: '' },
    { long: 'time', short: 'T', kind: 'int', help: '' },
  ],
};

test('combined short flags, attached values, = forms and lists', () => {
  const p = parseCommandLine(spec, ['-dit', '-eA=1', '-e', 'B=2', '--env=C=3', '--name', 'x', '-T=5', 'busybox', 'sh', '-c', 'echo -e hi']);
  const f = new Flags(p);
  assert.equal(f.bool('detach'), true);
  assert.equal(f.bool('interactive'), true);
  assert.equal(f.bool('tty'), true);
  assert.deepEqual(f.list('env'), ['A=1', 'B=2', 'C=3']);
  assert.equal(f.str('name'), 'x');
  assert.equal(f.int('time'), 5);
  assert.deepEqual(p.args, ['busybox', 'sh', '-c', 'echo -e hi']);
});

test('bool flags take =false; -- ends flags', () => {
  const p = parseCommandLine(spec, ['--detach=false', '--', '-img']);
  assert.equal(new Flags(p).bool('detach', true), false);
  assert.deepEqual(p.args, ['-img']);
});

test('interspersed flags for commands without their own command line', () => {
  const p = parseCommandLine({ ...spec, stopAtPositional: false }, ['a', '-d', 'b']);
  assert.deepEqual(p.args, ['a', 'b']);
  assert.equal(new Flags(p).bool('detach'), true);
});

test('errors read like pflag and carry exit status 125 (1 for argument counts)', () => {
  const err = (argv: string[], s: CommandSpec = spec): UsageError => {
    try {
      parseCommandLine(s, argv);
    } catch (e) {
      assert.ok(e instanceof UsageError);
      return e;
    }
    assert.fail('no error');
  };
  assert.equal(err(['--x', 'img']).message, 'unknown flag: --x');
  assert.equal(err(['-x', 'img']).message, "unknown shorthand flag: 'x' in -x");
  assert.equal(err(['--name']).message, 'flag needs an argument: --name');
  assert.equal(err(['-T', 'abc', 'img']).message, 'invalid argument "abc" for "-T, --time" flag: strconv.ParseInt: parsing "abc": invalid syntax');
  assert.equal(err(['-T', 'abc', 'img']).exitCode, 125);
  const e = err([]);
  assert.equal(e.message, "'berth run' requires at least 1 argument");
  assert.equal(e.exitCode, 1);
  assert.equal(err(['a'], { ...spec, minArgs: 0, maxArgs: 0 }).message, "'berth run' accepts no arguments");
});

test('--help short-circuits argument counts', () => {
  const p = parseCommandLine(spec, ['--help']);
  assert.equal(p.flags.get('help'), true);
});
