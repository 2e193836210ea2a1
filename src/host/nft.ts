// nftables and iptables from the host side. nftables goes through the netlink addon's
// libnftables (no process per change) when it loads, else through the `nft` command; the
// iptables coexistence rules always spawn the commands (rare, not on a hot path).
//
// The addon's call is synchronous and the kernel's commit of a transaction that deletes
// anything takes ~20 ms here (measured: adding an element ~1.5-3 ms, deleting one ~20 ms, any
// object type alike), so the calls run on one worker thread: berthd's event loop is not held
// while a container's ports go away. The thread holds nothing but the addon.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { BerthError } from '../errors.js';
import { netAddonPath, nftApply, nftAvailable } from './netlink.js';

/** What a finished command left behind; code 127 when the command does not exist. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `iptables`/`ip6tables` (iptables-nft) with args; the firewall's tests pass a fake. */
export type IptablesRunner = (command: 'iptables' | 'ip6tables', args: string[]) => Promise<CommandResult>;

/** `nft -j list table …` as parsed: `nftables` holds one object per table, set, map, chain and rule. */
export interface NftListing {
  nftables: Record<string, unknown>[];
}

const COMMAND_TIMEOUT_MS = 20_000;

/** Spawns a command, feeds it stdin, and collects its output; never throws for a non-zero exit. */
export function runCommand(command: string, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {
      // the command exited before reading its input; its exit status tells why
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') resolve({ code: 127, stdout: '', stderr: `${command}: command not found` });
      else reject(new BerthError('Internal', `cannot run ${command}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal ? `${stderr}${command} ended by ${signal}${signal === 'SIGTERM' ? ' (timeout)' : ''}` : stderr,
      });
    });
    child.stdin.end(input ?? '');
  });
}

export const runIptables: IptablesRunner = (command, args) => runCommand(command, args);

let addon: boolean | undefined;

/** Whether libnftables is usable through the addon; BERTH_NFT_SPAWN=1 forces the nft command. */
function useAddon(): boolean {
  // nftAvailable() loads libnftables on this thread first, so the worker never races the dlopen.
  addon ??= process.env.BERTH_NFT_SPAWN !== '1' && nftAvailable() === null;
  return addon;
}

/** How nftables is reached: 'addon' (libnftables in-process) or 'nft' (a process per call). */
export function nftBackend(): 'addon' | 'nft' {
  return useAddon() ? 'addon' : 'nft';
}

interface NftRunResult {
  ok: boolean;
  output: string;
  error: string;
}

// The worker speaks the addon's own nftRun(text, flags) → {ok, output, error}; netlink.ts is
// not imported there so that the code works from a single-file bundle as well.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
parentPort.on('message', (m) => {
  try {
    const r = addon.nftRun(m.text, m.flags);
    parentPort.postMessage({ id: m.id, ok: r.ok, output: r.output, error: r.error });
  } catch (e) {
    parentPort.postMessage({ id: m.id, thrown: String((e && e.message) || e) });
  }
});
`;

const NFT_CTX_OUTPUT_JSON = 1 << 4;

interface WorkerReply {
  id: number;
  ok?: boolean;
  output?: string;
  error?: string;
  thrown?: string;
}

/** One thread running libnftables calls in order; referenced only while calls are pending. */
class NftThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (r: NftRunResult) => void; reject: (e: unknown) => void }>();
  private nextId = 1;

  run(text: string, flags: number): Promise<NftRunResult> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, text, flags });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { addon: netAddonPath() } });
    worker.unref();
    worker.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.thrown !== undefined) p.reject(new BerthError('Internal', `nftApply: ${m.thrown}`));
      else p.resolve({ ok: m.ok === true, output: m.output ?? '', error: m.error ?? '' });
    });
    const fail = (why: string): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new BerthError('Internal', `the nftables thread ${why}`));
      this.pending.clear();
    };
    worker.on('error', (e) => fail(`failed: ${e.message}`));
    worker.on('exit', (code) => fail(`exited with status ${code}`));
    this.worker = worker;
    return worker;
  }
}

let thread: NftThread | undefined;
let threadless = false;

/** libnftables on the worker thread (on this one if threads cannot start); nft's messages as they are. */
async function runAddon(text: string, flags: number): Promise<string> {
  if (threadless) return nftApply(text, { json: (flags & NFT_CTX_OUTPUT_JSON) !== 0 });
  thread ??= new NftThread();
  let pending: Promise<NftRunResult>;
  try {
    pending = thread.run(text, flags);
  } catch {
    threadless = true;
    return nftApply(text, { json: (flags & NFT_CTX_OUTPUT_JSON) !== 0 });
  }
  const r = await pending;
  if (!r.ok) {
    throw new BerthError('InvalidArgument', `nft: ${r.error.trim() || 'nft failed without a message'}`, { hint: 'the whole transaction was rejected; nothing was changed' });
  }
  return r.output;
}

/** Applies an nft script as one transaction: all of it or nothing. */
export async function applyNft(text: string): Promise<void> {
  if (useAddon()) {
    await runAddon(text, 0);
    return;
  }
  const r = await runCommand('nft', ['-f', '-'], text);
  if (r.code === 127) {
    throw new BerthError('Unavailable', 'cannot apply nftables rules: the nft command is not installed', { hint: 'install nftables (apt-get install nftables)' });
  }
  if (r.code !== 0) {
    throw new BerthError('InvalidArgument', `nft: ${r.stderr.trim() || `exit status ${r.code}`}`, { hint: 'the whole transaction was rejected; nothing was changed' });
  }
}

function parseListing(json: string, what: string): NftListing {
  try {
    const parsed = JSON.parse(json) as { nftables?: unknown };
    if (!Array.isArray(parsed.nftables)) throw new Error('no "nftables" array');
    return { nftables: parsed.nftables as Record<string, unknown>[] };
  } catch (err) {
    throw new BerthError('Internal', `${what}: unreadable output: ${(err as Error).message}`, { cause: err });
  }
}

const ABSENT = /No such file or directory/;

/** `nft -j list table FAMILY NAME`, parsed; null when the table does not exist. */
export async function listNftTable(family: string, name: string): Promise<NftListing | null> {
  const what = `nft list table ${family} ${name}`;
  if (!/^[a-z0-9]+$/.test(family) || !/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw new BerthError('InvalidArgument', `${what}: not a table family and name`);
  if (useAddon()) {
    try {
      return parseListing(await runAddon(`list table ${family} ${name}`, NFT_CTX_OUTPUT_JSON), what);
    } catch (err) {
      if (ABSENT.test((err as Error).message)) return null;
      throw err;
    }
  }
  const r = await runCommand('nft', ['-j', 'list', 'table', family, name]);
  if (r.code === 127) throw new BerthError('Unavailable', 'cannot list nftables rules: the nft command is not installed', { hint: 'install nftables' });
  if (r.code !== 0) {
    if (ABSENT.test(r.stderr)) return null;
    throw new BerthError('Internal', `${what}: ${r.stderr.trim()}`);
  }
  return parseListing(r.stdout, what);
}
