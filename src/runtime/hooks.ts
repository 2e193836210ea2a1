// Runs OCI hooks that execute in the runtime namespace (prestart, createRuntime,
// poststart, poststop). createContainer and startContainer run inside the container's
// namespaces, so the plan compiler hands them to berth-exec as OP_HOOK.
import { spawn } from 'node:child_process';
import { BerthError } from '../errors.js';
import type { Hook, Hooks, State } from './spec.js';

export type HostHookKind = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';

function runHook(hook: Hook, kind: string, index: number, state: string): Promise<void> {
  const where = `hooks.${kind}[${index}] (${hook.path})`;
  return new Promise((resolve, reject) => {
    const args = hook.args ?? [hook.path];
    const child = spawn(hook.path, args.slice(1), {
      argv0: args[0] ?? hook.path,
      env: Object.fromEntries((hook.env ?? []).map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      })),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(state);
    const timer = hook.timeout
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(new BerthError('Unavailable', `${where}: timed out after ${hook.timeout}s`));
        }, hook.timeout * 1000)
      : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new BerthError('InvalidArgument', `${where}: cannot run: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new BerthError('FailedPrecondition', `${where}: ${signal ? `killed by ${signal}` : `exit status ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`),
        );
    });
  });
}

/** Runs the hooks of one kind in order; the first failure stops the rest and is thrown. */
export async function runHooks(hooks: Hooks | undefined, kind: HostHookKind, state: State): Promise<void> {
  const list = hooks?.[kind] ?? [];
  const text = JSON.stringify(state);
  for (let i = 0; i < list.length; i++) await runHook(list[i], kind, i, text);
}

/** Runs hooks whose failure the spec says must only be warned about (poststart, poststop). */
export async function runHooksWarnOnly(hooks: Hooks | undefined, kind: HostHookKind, state: State, warn: (msg: string) => void): Promise<void> {
  const list = hooks?.[kind] ?? [];
  const text = JSON.stringify(state);
  for (let i = 0; i < list.length; i++) {
    try {
      await runHook(list[i], kind, i, text);
    } catch (err) {
      warn(err instanceof BerthError ? err.message : String(err));
    }
  }
}
