// The daemon's event bus: what GET /events streams. A bounded ring of past events serves
// `since` replays; each subscriber has its own queue, and one that stops reading is dropped
// with an error instead of letting the daemon's memory grow without bound.
import { BerthError } from '../errors.js';
import type { EngineEvent, EventsOptions } from './types.js';
import { unixToNanos } from './filters.js';

export interface EventBusOptions {
  /** Past events kept for `since` replays. */
  capacity?: number;
  /** Events a subscriber may have queued and unread before it is dropped. */
  maxBacklog?: number;
  /** Nanoseconds since the epoch; tests pass a fake clock. */
  now?: () => bigint;
}

export interface EmitRequest {
  Type: EngineEvent['Type'];
  Action: string;
  id: string;
  attributes?: Record<string, string>;
}

/** The filter keys GET /events accepts (for parseFilters). */
export const EVENT_FILTERS = ['config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume'];

const DEFAULT_CAPACITY = 1000;
const DEFAULT_MAX_BACKLOG = 10_000;

function systemClock(): () => bigint {
  // hrtime is monotonic; anchoring it once to the wall clock gives ns resolution without
  // events ever going back in time when NTP steps the clock.
  const anchor = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => anchor + process.hrtime.bigint();
}

export class EventBus {
  private readonly capacity: number;
  private readonly maxBacklog: number;
  private readonly now: () => bigint;
  private readonly ring: EngineEvent[] = [];
  /** Index in `ring` of the oldest event once the ring is full. */
  private head = 0;
  private lastNs = 0n;
  private readonly subscribers = new Set<Subscription>();
  private closed = false;

  constructor(opts: EventBusOptions = {}) {
    this.capacity = Math.max(0, opts.capacity ?? DEFAULT_CAPACITY);
    this.maxBacklog = Math.max(1, opts.maxBacklog ?? DEFAULT_MAX_BACKLOG);
    this.now = opts.now ?? systemClock();
  }

  /** Records an event, fills Docker's time fields (and the old-style ones), and delivers it. */
  emit(req: EmitRequest): EngineEvent {
    let ns = this.now();
    if (ns < this.lastNs) ns = this.lastNs;
    this.lastNs = ns;
    const attributes = { ...(req.attributes ?? {}) };
    const event: EngineEvent = {
      Type: req.Type,
      Action: req.Action,
      Actor: { ID: req.id, Attributes: attributes },
      scope: 'local',
      time: Number(ns / 1_000_000_000n),
      timeNano: Number(ns),
    };
    // The docker CLI still prints these deprecated fields for containers and images.
    if (req.Type === 'container' || req.Type === 'image') {
      event.status = req.Action;
      event.id = req.id;
      if (req.Type === 'container' && attributes.image !== undefined) event.from = attributes.image;
    }
    this.remember(event);
    for (const sub of this.subscribers) sub.offer(event, ns);
    return event;
  }

  /**
   * Past events with time >= since (when since or until is given) first, then live ones,
   * until `until` passes or the signal aborts. The subscription starts now, not at the first
   * `next()`; iterate it or abort its signal, or it is dropped once its backlog is full.
   */
  subscribe(opts: EventsOptions = {}): AsyncIterableIterator<EngineEvent> {
    const filters = opts.filters ?? {};
    const sinceNs = opts.since === undefined ? undefined : unixToNanos(opts.since);
    const untilNs = opts.until === undefined ? undefined : unixToNanos(opts.until);
    const sub = new Subscription({
      filters,
      untilNs,
      maxBacklog: this.maxBacklog,
      detach: () => this.subscribers.delete(sub),
    });
    if (sinceNs !== undefined || untilNs !== undefined) {
      for (const e of this.past()) {
        const ns = BigInt(e.timeNano);
        if (sinceNs !== undefined && ns < sinceNs) continue;
        if (untilNs !== undefined && ns > untilNs) continue;
        if (matchEvent(e, filters)) sub.replay(e);
      }
    }
    const nowNs = this.now();
    if (this.closed || opts.signal?.aborted || (untilNs !== undefined && untilNs <= nowNs)) {
      sub.finish();
      return sub;
    }
    this.subscribers.add(sub);
    if (untilNs !== undefined) sub.endAfter(untilNs - nowNs);
    if (opts.signal) sub.endOnAbort(opts.signal);
    return sub;
  }

  /** Past events, oldest first (what a replay can see). */
  past(): EngineEvent[] {
    return [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  /** Ends every subscription (daemon shutdown); later subscriptions only replay. */
  close(): void {
    this.closed = true;
    for (const sub of this.subscribers) sub.finish();
    this.subscribers.clear();
  }

  /** How many live subscriptions there are (for tests and `info`). */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private remember(e: EngineEvent): void {
    if (this.capacity === 0) return;
    if (this.ring.length < this.capacity) {
      this.ring.push(e);
      return;
    }
    this.ring[this.head] = e;
    this.head = (this.head + 1) % this.capacity;
  }
}

interface SubscriptionOptions {
  filters: Record<string, string[]>;
  untilNs: bigint | undefined;
  maxBacklog: number;
  detach: () => void;
}

class Subscription implements AsyncIterableIterator<EngineEvent> {
  private readonly queue: EngineEvent[] = [];
  private waiter: ((r: IteratorResult<EngineEvent>) => void) | undefined;
  private failWaiter: ((err: unknown) => void) | undefined;
  private ended = false;
  private error: BerthError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abortCleanup: (() => void) | undefined;

  constructor(private readonly opts: SubscriptionOptions) {}

  /** Replayed events do not count against the backlog: a replay may exceed it by itself. */
  private replayed = 0;

  replay(e: EngineEvent): void {
    this.queue.push(e);
    this.replayed++;
  }

  offer(e: EngineEvent, ns: bigint): void {
    if (this.ended) return;
    if (this.opts.untilNs !== undefined && ns > this.opts.untilNs) {
      this.finish();
      return;
    }
    if (!matchEvent(e, this.opts.filters)) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failWaiter = undefined;
      w({ value: e, done: false });
      return;
    }
    if (this.queue.length >= this.opts.maxBacklog + this.replayed) {
      this.fail(
        new BerthError('Unavailable', `events subscriber dropped: it fell ${this.queue.length - this.replayed} events behind`, {
          hint: 'read the event stream faster or narrow it with filters, then subscribe again with since',
        }),
      );
      return;
    }
    this.queue.push(e);
  }

  endAfter(ns: bigint): void {
    const ms = Number(ns / 1_000_000n) + 1;
    // setTimeout fires at most ~24.8 days ahead; a later `until` is re-armed when it fires.
    const step = Math.min(ms, 2 ** 31 - 1);
    this.timer = setTimeout(() => (step === ms ? this.finish() : this.endAfter(ns - BigInt(step) * 1_000_000n)), step);
  }

  endOnAbort(signal: AbortSignal): void {
    const onAbort = (): void => this.finish();
    signal.addEventListener('abort', onAbort, { once: true });
    this.abortCleanup = () => signal.removeEventListener('abort', onAbort);
  }

  /** Ends after the queued events are read. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.teardown();
    if (this.waiter && this.queue.length === 0) {
      const w = this.waiter;
      this.waiter = this.failWaiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  private fail(err: BerthError): void {
    this.error = err;
    this.queue.length = 0;
    this.ended = true;
    this.teardown();
    if (this.failWaiter) {
      const f = this.failWaiter;
      this.waiter = this.failWaiter = undefined;
      f(err);
    }
  }

  private teardown(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abortCleanup?.();
    this.abortCleanup = undefined;
    this.opts.detach();
  }

  next(): Promise<IteratorResult<EngineEvent>> {
    const e = this.queue.shift();
    if (e) {
      if (this.replayed > 0) this.replayed--;
      return Promise.resolve({ value: e, done: false });
    }
    if (this.error) {
      const err = this.error;
      this.error = undefined;
      return Promise.reject(err);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error('EventBus subscription: next() called while a previous next() is pending'));
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  return(): Promise<IteratorResult<EngineEvent>> {
    this.queue.length = 0;
    this.error = undefined;
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<EngineEvent> {
    return this;
  }
}

/**
 * Docker's event filter semantics: every given key must match; within a key any value may.
 * `container`, `volume`, `network`, `daemon`, … match the actor's ID or its `name` attribute
 * by prefix, whatever the event's type (as Docker). `event` matches Action exactly, except
 * that `health_status`, `exec_create` and `exec_start` (Actions Docker suffixes with ": …")
 * match by prefix. `image` matches the image ID or name, with or without its tag.
 */
export function matchEvent(e: EngineEvent, filters: Record<string, string[]>): boolean {
  const attrs = e.Actor.Attributes ?? {};
  const has = (key: string): string[] | undefined => {
    const v = filters[key];
    return v && v.length > 0 ? v : undefined;
  };
  const exact = (key: string, value: string): boolean => has(key)?.includes(value) ?? true;
  const fuzzy = (key: string, ...values: (string | undefined)[]): boolean => {
    const wanted = has(key);
    if (!wanted) return true;
    return values.some((v) => v !== undefined && v !== '' && wanted.some((w) => v === w || v.startsWith(w)));
  };

  const events = has('event');
  if (events) {
    const prefix = events.some((v) => v === 'health_status' || v === 'exec_create' || v === 'exec_start');
    if (!events.some((v) => e.Action === v || (prefix && e.Action.startsWith(v)))) return false;
  }
  if (!exact('type', e.Type)) return false;
  if (!exact('scope', e.scope)) return false;
  for (const key of ['container', 'daemon', 'volume', 'network', 'plugin', 'node', 'service', 'secret', 'config']) {
    if (!fuzzy(key, e.Actor.ID, attrs.name)) return false;
  }
  const images = has('image');
  if (images) {
    const name = e.Type === 'image' ? attrs.name : attrs.image;
    const candidates = [e.Actor.ID, name, stripTag(e.Actor.ID), stripTag(name)].filter((c): c is string => !!c);
    if (!candidates.some((c) => images.includes(c))) return false;
  }
  const labels = has('label');
  if (labels) {
    for (const l of labels) {
      const eq = l.indexOf('=');
      const key = eq < 0 ? l : l.slice(0, eq);
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) return false;
      if (eq >= 0 && attrs[key] !== l.slice(eq + 1)) return false;
    }
  }
  return true;
}

function stripTag(ref: string | undefined): string | undefined {
  if (!ref || ref.includes('@') || ref.startsWith('sha256:')) return ref;
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}
