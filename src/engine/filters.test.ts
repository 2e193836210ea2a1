import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../errors.js';
import {
  filterBool,
  matchLabels,
  nanosToRfc3339,
  parseFilters,
  parseGoDuration,
  parseTimestamp,
  parseUntil,
  rfc3339ToNanos,
  unixToNanos,
} from './filters.js';

const invalid = (pattern: RegExp) => (err: unknown) => isBerthError(err, 'InvalidArgument') && pattern.test(err.message);

test('parseFilters accepts both of Docker clients\' JSON shapes', () => {
  assert.deepEqual(parseFilters('{"label":{"a=b":true,"c":true},"name":{"web":true}}', ['label', 'name']), { label: ['a=b', 'c'], name: ['web'] });
  assert.deepEqual(parseFilters('{"label":["a=b","c"],"name":["web"]}', ['label', 'name']), { label: ['a=b', 'c'], name: ['web'] });
  assert.deepEqual(parseFilters('{"label":["x","x"]}', ['label']), { label: ['x'] });
});

test('parseFilters treats absent, empty and empty-valued filters as no filter', () => {
  assert.deepEqual(parseFilters(undefined, ['label']), {});
  assert.deepEqual(parseFilters('', ['label']), {});
  assert.deepEqual(parseFilters('{}', ['label']), {});
  assert.deepEqual(parseFilters('null', ['label']), {});
  assert.deepEqual(parseFilters('{"label":[]}', ['label']), {});
  assert.deepEqual(parseFilters('{"label":{}}', ['label']), {});
});

test('parseFilters refuses unknown keys with Docker\'s wording and malformed input', () => {
  assert.throws(() => parseFilters('{"lable":["a"]}', ['label', 'name']), invalid(/^invalid filter 'lable'$/));
  assert.throws(() => parseFilters('{"label":', ['label']), invalid(/not JSON/));
  assert.throws(() => parseFilters('["label"]', ['label']), invalid(/JSON object/));
  assert.throws(() => parseFilters('{"label":"a"}', ['label']), invalid(/invalid filter 'label'.*a string/));
  assert.throws(() => parseFilters('{"label":[1]}', ['label']), invalid(/element 0 is a number/));
});

test('matchLabels needs every wanted key or key=value', () => {
  const labels = { app: 'web', tier: 'front', empty: '' };
  assert.equal(matchLabels(labels, undefined), true);
  assert.equal(matchLabels(labels, []), true);
  assert.equal(matchLabels(labels, ['app']), true);
  assert.equal(matchLabels(labels, ['app=web', 'tier=front']), true);
  assert.equal(matchLabels(labels, ['app=db']), false);
  assert.equal(matchLabels(labels, ['app=web', 'missing']), false);
  assert.equal(matchLabels(labels, ['empty=']), true);
  assert.equal(matchLabels(labels, ['app=web=x']), false);
  assert.equal(matchLabels({ k: 'a=b' }, ['k=a=b']), true);
  assert.equal(matchLabels(null, ['app']), false);
  assert.equal(matchLabels({ toString: 'x' } as Record<string, string>, ['toString']), true);
  assert.equal(matchLabels({}, ['constructor']), false);
});

test('filterBool reads Docker\'s boolean spellings', () => {
  assert.equal(filterBool({}, 'all'), undefined);
  assert.equal(filterBool({ all: ['true'] }, 'all'), true);
  assert.equal(filterBool({ all: ['1'] }, 'all'), true);
  assert.equal(filterBool({ all: ['FALSE'] }, 'all'), false);
  assert.equal(filterBool({ all: ['0'] }, 'all'), false);
  assert.throws(() => filterBool({ all: ['yes'] }, 'all'), invalid(/'all=yes'/));
  assert.throws(() => filterBool({ all: ['true', 'false'] }, 'all'), invalid(/both/));
});

test('parseGoDuration reads Go durations', () => {
  assert.equal(parseGoDuration('10m'), 600);
  assert.equal(parseGoDuration('1h30m'), 5400);
  assert.equal(parseGoDuration('1.5s'), 1.5);
  assert.equal(parseGoDuration('300ms'), 0.3);
  assert.equal(parseGoDuration('-2h'), -7200);
  assert.equal(parseGoDuration('2h45m10s'), 9910);
  assert.equal(parseGoDuration('10'), undefined);
  assert.equal(parseGoDuration('m'), undefined);
  assert.equal(parseGoDuration('10d'), undefined);
});

test('parseTimestamp and parseUntil take durations, RFC 3339, dates and unix seconds', () => {
  const now = Date.UTC(2024, 0, 31, 12, 0, 0);
  assert.equal(parseUntil('10m', now), now / 1000 - 600);
  assert.equal(parseUntil('1h30m', now), now / 1000 - 5400);
  assert.equal(parseTimestamp('2024-01-31T10:00:00Z', now), Date.UTC(2024, 0, 31, 10) / 1000);
  assert.equal(parseTimestamp('2024-01-31T10:00:00.25Z', now), Date.UTC(2024, 0, 31, 10) / 1000 + 0.25);
  assert.equal(parseTimestamp('2024-01-31T10:00:00+02:00', now), Date.UTC(2024, 0, 31, 8) / 1000);
  assert.equal(parseTimestamp('2024-01-31T10:00Z', now), Date.UTC(2024, 0, 31, 10) / 1000);
  assert.equal(parseTimestamp('2024-01-31Z', now), Date.UTC(2024, 0, 31) / 1000);
  // Without a zone Docker reads local time.
  assert.equal(parseTimestamp('2024-01-31T10:00:00', now), new Date(2024, 0, 31, 10).getTime() / 1000);
  assert.equal(parseTimestamp('2024-01-31', now), new Date(2024, 0, 31).getTime() / 1000);
  assert.equal(parseTimestamp('1706695200', now), 1706695200);
  assert.equal(parseTimestamp('1706695200.5', now), 1706695200.5);
  assert.equal(parseTimestamp('0', now), 0);
  assert.throws(() => parseTimestamp('yesterday', now), invalid(/invalid timestamp 'yesterday'/));
  assert.throws(() => parseTimestamp('2024-13-01T00:00:00Z', now), invalid(/not a valid date/));
});

test('time conversions keep nanoseconds', () => {
  const ns = rfc3339ToNanos('2026-11-22T02:10:00.123456789Z');
  assert.equal(ns, BigInt(Date.UTC(2026, 10, 22, 2, 10)) * 1_000_000n + 123456789n);
  assert.equal(rfc3339ToNanos('2026-11-22T02:10:00Z'), BigInt(Date.UTC(2026, 10, 22, 2, 10)) * 1_000_000n);
  assert.equal(rfc3339ToNanos('2026-11-22T04:10:00.5+02:00'), BigInt(Date.UTC(2026, 10, 22, 2, 10)) * 1_000_000n + 500_000_000n);
  assert.equal(rfc3339ToNanos('not a time'), undefined);
  assert.equal(nanosToRfc3339(ns as bigint), '2026-11-22T02:10:00.123456789Z');
  assert.equal(nanosToRfc3339(BigInt(Date.UTC(2026, 0, 1)) * 1_000_000n + 5n), '2026-01-01T00:00:00.000000005Z');
  assert.equal(unixToNanos('1706695200.000000001'), 1706695200_000000001n);
  assert.equal(unixToNanos('1706695200'), 1706695200_000000000n);
  assert.equal(unixToNanos(1.5), 1_500_000_000n);
  assert.throws(() => unixToNanos('soon'), invalid(/invalid unix timestamp/));
});
