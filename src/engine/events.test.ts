import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { isBerthError } from '../errors.js';
import { EventBus, matchEvent } from './events.js';
import type { EngineEvent } from './types.js';

const S = 1_000_000_000n;

/** A clock the test moves by hand (ns). */
function fakeClock(startSeconds: number): { now: () => bigint; set: (seconds: number) => void } {
  let ns = BigInt(startSeconds) * S;
  return { now: () => ns, set: (seconds) => (ns = BigInt(Math.round(seconds * 1e9))) };
}

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

test('emit fills Docker\'s time and old-style fields', () => {
  const clock = fakeClock(1000);
  clock.set(1000.123456789);
  const bus = new EventBus({ now: clock.now });
  const e = bus.emit({ Type: 'container', Action: 'start', id: 'abc', attributes: { image: 'busybox', name: 'web' } });
  assert.deepEqual(e, {
    Type: 'container',
    Action: 'start',
    Actor: { ID: 'abc', Attributes: { image: 'busybox', name: 'web' } },
    scope: 'local',
    time: 1000,
    timeNano: 1000123456789,
    status: 'start',
    id: 'abc',
    from: 'busybox',
  });
  const img = bus.emit({ Type: 'image', Action: 'pull', id: 'busybox:latest', attributes: { name: 'busybox:latest' } });
  assert.equal(img.status, 'pull');
  assert.equal(img.id, 'busybox:latest');
  assert.equal(img.from, undefined);
  const vol = bus.emit({ Type: 'volume', Action: 'create', id: 'data' });
  assert.equal(vol.status, undefined);
  assert.deepEqual(vol.Actor, { ID: 'data', Attributes: {} });
});

test('times never go backwards even if the clock does', () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  bus.emit({ Type: 'daemon', Action: 'reload', id: 'd' });
  clock.set(999);
  const e = bus.emit({ Type: 'daemon', Action: 'reload', id: 'd' });
  assert.equal(e.time, 1000);
});

test('subscribe replays past events since a time, then delivers live ones', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  bus.emit({ Type: 'container', Action: 'create', id: 'a' });
  clock.set(1010);
  bus.emit({ Type: 'container', Action: 'start', id: 'a' });
  const ac = new AbortController();
  const it = bus.subscribe({ since: 1005, signal: ac.signal });
  clock.set(1020);
  bus.emit({ Type: 'container', Action: 'die', id: 'a' });
  const got = await take(it, 2);
  assert.deepEqual(got.map((e) => e.Action), ['start', 'die']);
  const pending = it.next();
  bus.emit({ Type: 'container', Action: 'destroy', id: 'a' });
  assert.equal((await pending).value?.Action, 'destroy');
  ac.abort();
  assert.equal((await it.next()).done, true);
  assert.equal(bus.subscriberCount, 0);
});

test('without since, only live events are delivered', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  bus.emit({ Type: 'container', Action: 'create', id: 'a' });
  const ac = new AbortController();
  const it = bus.subscribe({ signal: ac.signal });
  bus.emit({ Type: 'container', Action: 'start', id: 'a' });
  assert.equal((await it.next()).value?.Action, 'start');
  ac.abort();
});

test('an until in the past ends after the replay; one in the future ends on time', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  bus.emit({ Type: 'container', Action: 'create', id: 'a' });
  clock.set(1010);
  bus.emit({ Type: 'container', Action: 'start', id: 'a' });
  clock.set(1020);
  const past: EngineEvent[] = [];
  for await (const e of bus.subscribe({ until: 1005 })) past.push(e);
  assert.deepEqual(past.map((e) => e.Action), ['create']);
  const both: EngineEvent[] = [];
  for await (const e of bus.subscribe({ since: 1005, until: 1015 })) both.push(e);
  assert.deepEqual(both.map((e) => e.Action), ['start']);

  // until 50 ms ahead of the (real) timer: the stream ends by itself.
  const real = new EventBus();
  const soon = Date.now() / 1000 + 0.05;
  const live: EngineEvent[] = [];
  const it = real.subscribe({ until: soon });
  real.emit({ Type: 'container', Action: 'start', id: 'b' });
  for await (const e of it) live.push(e);
  assert.deepEqual(live.map((e) => e.Action), ['start']);
  assert.equal(real.subscriberCount, 0);
});

test('an already aborted signal yields only the replay', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  bus.emit({ Type: 'container', Action: 'create', id: 'a' });
  const ac = new AbortController();
  ac.abort();
  const got: EngineEvent[] = [];
  for await (const e of bus.subscribe({ since: 0.5, signal: ac.signal })) got.push(e);
  assert.deepEqual(got.map((e) => e.Action), ['create']);
  assert.equal(bus.subscriberCount, 0);
});

test('the ring keeps the last `capacity` events', () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ capacity: 3, now: clock.now });
  for (let i = 0; i < 5; i++) bus.emit({ Type: 'container', Action: `a${i}`, id: 'x' });
  assert.deepEqual(bus.past().map((e) => e.Action), ['a2', 'a3', 'a4']);
  assert.deepEqual(new EventBus({ capacity: 0 }).past(), []);
});

test('subscriptions are filtered', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  const ac = new AbortController();
  const it = bus.subscribe({ filters: { type: ['container'], event: ['die'] }, signal: ac.signal });
  bus.emit({ Type: 'container', Action: 'start', id: 'a' });
  bus.emit({ Type: 'volume', Action: 'die', id: 'v' });
  bus.emit({ Type: 'container', Action: 'die', id: 'a' });
  assert.equal((await it.next()).value?.Actor.ID, 'a');
  ac.abort();
  assert.equal((await it.next()).done, true);
});

test('a subscriber that does not read is dropped with an error, others continue', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now, maxBacklog: 5 });
  const slow = bus.subscribe({});
  const ac = new AbortController();
  const fast = bus.subscribe({ signal: ac.signal });
  const seen: string[] = [];
  const reader = (async () => {
    for await (const e of fast) seen.push(e.Action);
  })();
  for (let i = 0; i < 10; i++) {
    bus.emit({ Type: 'container', Action: `e${i}`, id: 'x' });
    await tick();
  }
  assert.equal(bus.subscriberCount, 1);
  await assert.rejects(slow.next(), (err: unknown) => isBerthError(err, 'Unavailable') && /fell 5 events behind/.test(err.message));
  assert.equal((await slow.next()).done, true);
  ac.abort();
  await reader;
  assert.equal(seen.length, 10);
});

test('a replay larger than the backlog limit does not drop the subscriber', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now, maxBacklog: 2, capacity: 10 });
  for (let i = 0; i < 8; i++) bus.emit({ Type: 'container', Action: `old${i}`, id: 'x' });
  const ac = new AbortController();
  const it = bus.subscribe({ since: 1, signal: ac.signal });
  bus.emit({ Type: 'container', Action: 'live', id: 'x' });
  const got = await take(it, 9);
  assert.equal(got.length, 9);
  assert.equal(got[8].Action, 'live');
  ac.abort();
});

test('since and until compare at sub-second precision, inclusive', async () => {
  const clock = fakeClock(1000);
  const bus = new EventBus({ now: clock.now });
  clock.set(1000.25);
  bus.emit({ Type: 'container', Action: 'a', id: 'x' });
  clock.set(1000.5);
  bus.emit({ Type: 'container', Action: 'b', id: 'x' });
  clock.set(1000.75);
  bus.emit({ Type: 'container', Action: 'c', id: 'x' });
  clock.set(1001);
  const got: string[] = [];
  for await (const e of bus.subscribe({ since: 1000.5, until: 1000.5 })) got.push(e.Action);
  assert.deepEqual(got, ['b']);
});

test('breaking out of the loop unsubscribes; close ends everyone', async () => {
  const bus = new EventBus();
  const it = bus.subscribe({});
  bus.emit({ Type: 'container', Action: 'start', id: 'x' });
  for await (const e of it) {
    assert.equal(e.Action, 'start');
    break;
  }
  assert.equal(bus.subscriberCount, 0);
  const a = bus.subscribe({});
  const pending = a.next();
  bus.close();
  assert.equal((await pending).done, true);
  assert.equal(bus.subscriberCount, 0);
});

function ev(Type: EngineEvent['Type'], Action: string, ID: string, Attributes: Record<string, string> = {}): EngineEvent {
  return { Type, Action, Actor: { ID, Attributes }, scope: 'local', time: 1, timeNano: 1e9 };
}

test('matchEvent follows Docker\'s filter rules', () => {
  const c = ev('container', 'health_status: healthy', 'abcdef0123', { name: 'web', image: 'busybox:latest', 'com.example': 'yes' });
  assert.equal(matchEvent(c, {}), true);
  assert.equal(matchEvent(c, { type: ['container', 'image'] }), true);
  assert.equal(matchEvent(c, { type: ['image'] }), false);
  // health_status matches "health_status: healthy" by prefix; other actions exactly.
  assert.equal(matchEvent(c, { event: ['health_status'] }), true);
  assert.equal(matchEvent(ev('container', 'exec_start: sh', 'x'), { event: ['exec_start'] }), true);
  assert.equal(matchEvent(ev('container', 'start', 'x'), { event: ['star'] }), false);
  assert.equal(matchEvent(ev('container', 'start', 'x'), { event: ['die', 'start'] }), true);
  // container: id, id prefix, or name
  assert.equal(matchEvent(c, { container: ['abcdef0123'] }), true);
  assert.equal(matchEvent(c, { container: ['abc'] }), true);
  assert.equal(matchEvent(c, { container: ['web'] }), true);
  assert.equal(matchEvent(c, { container: ['db'] }), false);
  // image: by the container's image attribute, with or without tag
  assert.equal(matchEvent(c, { image: ['busybox'] }), true);
  assert.equal(matchEvent(c, { image: ['busybox:latest'] }), true);
  assert.equal(matchEvent(c, { image: ['alpine'] }), false);
  const img = ev('image', 'tag', 'sha256:' + 'a'.repeat(64), { name: 'localhost:5000/app:v1' });
  assert.equal(matchEvent(img, { image: ['localhost:5000/app'] }), true);
  assert.equal(matchEvent(img, { image: ['sha256:' + 'a'.repeat(64)] }), true);
  assert.equal(matchEvent(img, { image: ['sha256'] }), false);
  assert.equal(matchEvent(img, { image: ['localhost'] }), false);
  // label on attributes
  assert.equal(matchEvent(c, { label: ['com.example'] }), true);
  assert.equal(matchEvent(c, { label: ['com.example=yes'] }), true);
  assert.equal(matchEvent(c, { label: ['com.example=no'] }), false);
  // volume, network, daemon by id or name
  assert.equal(matchEvent(ev('volume', 'create', 'data', { driver: 'local' }), { volume: ['data'] }), true);
  assert.equal(matchEvent(ev('volume', 'create', 'data'), { volume: ['other'] }), false);
  assert.equal(matchEvent(ev('network', 'connect', 'n1', { name: 'front' }), { network: ['front'] }), true);
  assert.equal(matchEvent(ev('daemon', 'reload', 'd1', { name: 'host' }), { daemon: ['host'] }), true);
  // a container filter excludes events of other actors, as Docker
  assert.equal(matchEvent(ev('volume', 'create', 'data'), { container: ['web'] }), false);
  assert.equal(matchEvent(c, { scope: ['local'] }), true);
  assert.equal(matchEvent(c, { scope: ['swarm'] }), false);
  // keys combine with AND
  assert.equal(matchEvent(c, { type: ['container'], container: ['web'], event: ['die'] }), false);
});
