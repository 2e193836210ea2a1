// Image commands: images, pull, push, tag, rmi, save, load, import, history, image inspect,
// image prune. Progress streams print per-layer bars on a terminal, plain lines otherwise.
import { createReadStream, createWriteStream, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { ImageHistoryEntry, ImageSummaryDocker, ProgressMessage, RegistryAuth } from '../../engine/types.js';
import { DaemonError, filtersJson, jsonLines } from './client.js';
import { CliError, type Command, type Context } from './context.js';
import { type FlagSpec } from './flags.js';
import { ellipsis, goTimeString, humanDuration, humanSize, renderRows, shortId, type Row } from './format.js';
import { confirm, declined, enc, formatInspect } from './output.js';
import { fullyQualified, printProgress, splitReference } from './progress.js';

const FORMAT_FLAG: FlagSpec = { long: 'format', kind: 'string', help: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" };

/** The registry a reference names, as ~/.docker/config.json keys it. */
export function registryOf(ref: string): string {
  const name = splitReference(ref).name;
  const first = name.split('/')[0];
  if (name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first;
  return 'https://index.docker.io/v1/';
}

/** $DOCKER_CONFIG, else ~/.docker: where docker (and berth) keep config.json. */
export function dockerConfigDir(env: Record<string, string | undefined>): string {
  return env.DOCKER_CONFIG ?? path.join(env.HOME ?? os.homedir(), '.docker');
}

/** X-Registry-Auth from the user's docker config (credentials in `auths`; helpers are not run). */
export function registryAuthHeader(ref: string, env: Record<string, string | undefined>): string {
  const dir = dockerConfigDir(env);
  const server = registryOf(ref);
  let auth: RegistryAuth = {};
  try {
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { auths?: Record<string, { auth?: string; identitytoken?: string }> };
    const entry = cfg.auths?.[server] ?? (server === 'https://index.docker.io/v1/' ? cfg.auths?.['docker.io'] : undefined);
    if (entry?.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      auth = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: server };
    } else if (entry?.identitytoken) auth = { identitytoken: entry.identitytoken, serveraddress: server };
  } catch {
    // no config or unreadable: anonymous, as docker does
  }
  return Buffer.from(JSON.stringify(auth)).toString('base64url');
}

/** Pulls `ref`, printing progress to `out`; used by pull and by run/create on a missing image. */
export async function pullImage(ctx: Context, ref: string, opts: { platform?: string; quiet?: boolean; out: Writable & { isTTY?: boolean }; allTags?: boolean }): Promise<void> {
  const r = splitReference(ref);
  const tag = r.digest ?? r.tag ?? (opts.allTags ? undefined : 'latest');
  const res = await ctx.client().request('POST', '/images/create', {
    query: { fromImage: r.name, tag, platform: opts.platform },
    headers: { 'X-Registry-Auth': registryAuthHeader(ref, ctx.env) },
  });
  await printProgress(res, opts.out, { quiet: opts.quiet });
}

/** One `docker images` row per repository:tag of each image. */
export function imageRows(images: ImageSummaryDocker[], opts: { trunc: boolean; digests: boolean; now: number }): Row[] {
  const rows: Row[] = [];
  for (const img of images) {
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const digests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>');
    const digestFor = (repo: string): string => digests.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
    const base = {
      ID: opts.trunc ? shortId(img.Id) : img.Id,
      CreatedSince: img.Created ? `${humanDuration(opts.now - img.Created * 1000)} ago` : 'N/A',
      CreatedAt: goTimeString(img.Created),
      Size: humanSize(img.Size, 3),
      VirtualSize: humanSize(img.VirtualSize ?? img.Size, 3),
      SharedSize: img.SharedSize < 0 ? 'N/A' : humanSize(img.SharedSize, 3),
      UniqueSize: img.SharedSize < 0 ? 'N/A' : humanSize(img.Size - img.SharedSize, 3),
      Containers: img.Containers < 0 ? 'N/A' : String(img.Containers),
    };
    if (tags.length === 0) {
      if (digests.length && opts.digests) for (const d of digests) rows.push({ ...base, Repository: d.split('@')[0], Tag: '<none>', Digest: d.split('@')[1] });
      else rows.push({ ...base, Repository: '<none>', Tag: '<none>', Digest: digests[0]?.split('@')[1] ?? '<none>' });
      continue;
    }
    for (const t of tags) {
      const colon = t.lastIndexOf(':');
      const repo = t.slice(0, colon);
      rows.push({ ...base, Repository: repo, Tag: t.slice(colon + 1), Digest: digestFor(repo) });
    }
  }
  return rows;
}

const images: Command = {
  spec: {
    name: 'images',
    usage: '[OPTIONS] [REPOSITORY[:TAG]]',
    summary: 'List images',
    maxArgs: 1,
    flags: [
      { long: 'all', short: 'a', kind: 'bool', help: 'Show all images (default hides intermediate images)' },
      { long: 'digests', kind: 'bool', help: 'Show digests' },
      { long: 'filter', short: 'f', kind: 'list', help: 'Filter output based on conditions provided', arg: 'filter' },
      FORMAT_FLAG,
      { long: 'no-trunc', kind: 'bool', help: "Don't truncate output" },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Only show image IDs' },
    ],
  },
  async run(ctx, f, args) {
    const filters = [...f.list('filter'), ...(args[0] ? [`reference=${args[0]}`] : [])];
    const list = await ctx.client().json<ImageSummaryDocker[]>('GET', '/images/json', { query: { all: f.bool('all') || undefined, filters: filtersJson(filters), digests: f.bool('digests') || undefined } });
    list.sort((a, b) => b.Created - a.Created);
    const rows = imageRows(list, { trunc: !f.bool('no-trunc'), digests: f.bool('digests'), now: Date.now() });
    const columns: [string, string][] = [['REPOSITORY', 'Repository'], ['TAG', 'Tag'], ...(f.bool('digests') ? [['DIGEST', 'Digest'] as [string, string]] : []), ['IMAGE ID', 'ID'], ['CREATED', 'CreatedSince'], ['SIZE', 'Size']];
    const headers: [string, string][] = [['DIGEST', 'Digest'], ['CREATED AT', 'CreatedAt'], ['CONTAINERS', 'Containers'], ['SHARED SIZE', 'SharedSize'], ['UNIQUE SIZE', 'UniqueSize']];
    ctx.stdout.write(renderRows(rows, { format: f.str('format'), columns, headers, quiet: f.bool('quiet') }));
    return 0;
  },
};

const pull: Command = {
  spec: {
    name: 'pull',
    usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
    summary: 'Download an image from a registry',
    minArgs: 1,
    maxArgs: 1,
    flags: [
      { long: 'all-tags', short: 'a', kind: 'bool', help: 'Download all tagged images in the repository' },
      { long: 'disable-content-trust', kind: 'bool', help: 'Skip image verification (always: berth has no content trust)' },
      { long: 'platform', kind: 'string', help: 'Set platform if server is multi-platform capable' },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Suppress verbose output' },
    ],
  },
  async run(ctx, f, [ref]) {
    if (f.bool('all-tags')) throw new CliError('--all-tags: pulling every tag of a repository is not supported by berth; name one tag');
    const r = splitReference(ref);
    if (!r.tag && !r.digest && !f.bool('quiet')) ctx.stdout.write('Using default tag: latest\n');
    await pullImage(ctx, ref, { platform: f.str('platform'), quiet: f.bool('quiet'), out: ctx.stdout });
    ctx.stdout.write(`${fullyQualified(ref)}\n`);
    return 0;
  },
};

const push: Command = {
  spec: {
    name: 'push',
    usage: '[OPTIONS] NAME[:TAG]',
    summary: 'Upload an image to a registry',
    minArgs: 1,
    maxArgs: 1,
    flags: [
      { long: 'all-tags', short: 'a', kind: 'bool', help: 'Push all tags of an image to the repository' },
      { long: 'disable-content-trust', kind: 'bool', help: 'Skip image signing (always: berth has no content trust)' },
      { long: 'platform', kind: 'string', help: 'Push a platform-specific manifest as a single-platform image' },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Suppress verbose output' },
    ],
  },
  async run(ctx, f, [ref]) {
    if (f.has('platform')) throw new CliError('--platform: pushing one platform of an image is not supported by berth');
    const r = splitReference(ref);
    if (r.digest) throw new CliError(`push ${ref}: push a tag, not a digest`);
    if (!r.tag && !f.bool('all-tags') && !f.bool('quiet')) ctx.stdout.write(`Using default tag: latest\n`);
    const tag = f.bool('all-tags') ? undefined : (r.tag ?? 'latest');
    const res = await ctx.client().request('POST', `/images/${enc(r.name)}/push`, { query: { tag }, headers: { 'X-Registry-Auth': registryAuthHeader(ref, ctx.env) } });
    await printProgress(res, ctx.stdout, { quiet: f.bool('quiet') });
    if (f.bool('quiet')) ctx.stdout.write(`${r.name}${tag ? `:${tag}` : ''}\n`);
    return 0;
  },
};

const tag: Command = {
  spec: { name: 'tag', usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', flags: [], minArgs: 2, maxArgs: 2 },
  async run(ctx, _f, [source, target]) {
    const t = splitReference(target);
    if (t.digest) throw new CliError(`refusing to create a tag with a digest reference: ${target}`);
    await ctx.client().call('POST', `/images/${enc(source)}/tag`, { query: { repo: t.name, tag: t.tag ?? 'latest' } });
    return 0;
  },
};

const rmi: Command = {
  spec: {
    name: 'rmi',
    usage: '[OPTIONS] IMAGE [IMAGE...]',
    summary: 'Remove one or more images',
    minArgs: 1,
    flags: [
      { long: 'force', short: 'f', kind: 'bool', help: 'Force removal of the image' },
      { long: 'no-prune', kind: 'bool', help: 'Do not delete untagged parents' },
    ],
  },
  async run(ctx, f, args) {
    let failed = false;
    for (const name of args) {
      try {
        const r = await ctx.client().json<{ Untagged?: string; Deleted?: string }[]>('DELETE', `/images/${enc(name)}`, { query: { force: f.bool('force') || undefined, noprune: f.bool('no-prune') || undefined } });
        for (const d of r ?? []) ctx.stdout.write(d.Untagged ? `Untagged: ${d.Untagged}\n` : `Deleted: ${d.Deleted}\n`);
      } catch (e) {
        if (!(e instanceof DaemonError)) throw e;
        failed = true;
        ctx.stderr.write(`Error response from daemon: ${e.message}\n`);
      }
    }
    return failed ? 1 : 0;
  },
};

const save: Command = {
  spec: { name: 'save', usage: '[OPTIONS] IMAGE [IMAGE...]', summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)', minArgs: 1, flags: [{ long: 'output', short: 'o', kind: 'string', help: 'Write to a file, instead of STDOUT' }, { long: 'platform', kind: 'list', help: 'Save only the given platform(s)', arg: 'stringArray' }] },
  async run(ctx, f, args) {
    if (f.has('platform')) throw new CliError('--platform: saving chosen platforms is not supported by berth');
    const out = f.str('output');
    if (!out && ctx.stdout.isTTY) throw new CliError('Cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const res = await ctx.client().request('GET', '/images/get', { query: { names: args } });
    if (out) {
      const tmp = `${out}.berth-${process.pid}`;
      await pipeline(res, createWriteStream(tmp));
      renameSync(tmp, out);
    } else await pipeline(res, ctx.stdout, { end: false });
    return 0;
  },
};

const load: Command = {
  spec: { name: 'load', usage: '[OPTIONS]', summary: 'Load an image from a tar archive or STDIN', maxArgs: 0, flags: [{ long: 'input', short: 'i', kind: 'string', help: 'Read from tar archive file, instead of STDIN' }, { long: 'quiet', short: 'q', kind: 'bool', help: 'Suppress the load output' }, { long: 'platform', kind: 'list', help: 'Load only the given platform(s)', arg: 'stringArray' }] },
  async run(ctx, f) {
    if (f.has('platform')) throw new CliError('--platform: loading chosen platforms is not supported by berth');
    const input = f.str('input');
    if (!input && ctx.stdin.isTTY) throw new CliError('requested load from stdin, but stdin is empty');
    const body = input ? createReadStream(input) : ctx.stdin;
    // docker asks for the quiet form when nobody watches the progress
    const quiet = f.bool('quiet') || !ctx.stdout.isTTY;
    const res = await ctx.client().request('POST', '/images/load', { query: { quiet: quiet || undefined }, raw: body, contentType: 'application/x-tar' });
    await printProgress(res, ctx.stdout);
    return 0;
  },
};

const importCmd: Command = {
  spec: {
    name: 'import',
    usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
    summary: 'Import the contents from a tarball to create a filesystem image',
    minArgs: 1,
    maxArgs: 2,
    flags: [
      { long: 'change', short: 'c', kind: 'list', help: 'Apply Dockerfile instruction to the created image', arg: 'list' },
      { long: 'message', short: 'm', kind: 'string', help: 'Set commit message for imported image' },
      { long: 'platform', kind: 'string', help: 'Set platform if server is multi-platform capable' },
    ],
  },
  async run(ctx, f, [source, ref]) {
    const r = ref ? splitReference(ref) : undefined;
    const isUrl = /^https?:\/\//.test(source);
    const query = { fromSrc: isUrl ? source : '-', repo: r?.name, tag: r?.tag, message: f.str('message'), changes: f.list('change'), platform: f.str('platform') };
    const raw = isUrl ? undefined : source === '-' ? ctx.stdin : createReadStream(source);
    const res = await ctx.client().request('POST', '/images/create', { query, raw });
    for await (const m of jsonLines<ProgressMessage>(res)) {
      if (m.errorDetail || m.error) throw new CliError(m.errorDetail?.message ?? m.error ?? 'import failed');
      if (m.status && !m.progressDetail?.total) ctx.stdout.write(`${m.status}\n`);
    }
    return 0;
  },
};

const history: Command = {
  spec: {
    name: 'history',
    usage: '[OPTIONS] IMAGE',
    summary: 'Show the history of an image',
    minArgs: 1,
    maxArgs: 1,
    flags: [
      FORMAT_FLAG,
      { long: 'human', short: 'H', kind: 'bool', help: 'Print sizes and dates in human readable format (default true)' },
      { long: 'no-trunc', kind: 'bool', help: "Don't truncate output" },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Only show image IDs' },
    ],
  },
  async run(ctx, f, [name]) {
    const list = await ctx.client().json<ImageHistoryEntry[]>('GET', `/images/${enc(name)}/history`);
    const human = f.bool('human', true);
    const trunc = !f.bool('no-trunc');
    const now = Date.now();
    const rows: Row[] = list.map((h) => ({
      ID: h.Id === '<missing>' ? '<missing>' : trunc ? shortId(h.Id) : h.Id,
      CreatedSince: human ? `${humanDuration(now - h.Created * 1000)} ago` : new Date(h.Created * 1000).toISOString().replace('.000Z', 'Z'),
      CreatedAt: new Date(h.Created * 1000).toISOString().replace('.000Z', 'Z'),
      CreatedBy: trunc ? ellipsis(h.CreatedBy.replace(/\t/g, ' '), 45) : h.CreatedBy.replace(/\t/g, ' '),
      Size: human ? humanSize(h.Size, 3) : String(h.Size),
      Comment: h.Comment,
      Tags: (h.Tags ?? []).join(', '),
    }));
    const columns: [string, string][] = [['IMAGE', 'ID'], ['CREATED', 'CreatedSince'], ['CREATED BY', 'CreatedBy'], ['SIZE', 'Size'], ['COMMENT', 'Comment']];
    ctx.stdout.write(renderRows(rows, { format: f.str('format'), columns, headers: [['CREATED AT', 'CreatedAt']], quiet: f.bool('quiet') }));
    return 0;
  },
};

const imageInspect: Command = {
  spec: { name: 'image inspect', usage: '[OPTIONS] IMAGE [IMAGE...]', summary: 'Display detailed information on one or more images', minArgs: 1, flags: [{ long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' }] },
  async run(ctx, f, args) {
    const found: unknown[] = [];
    let failed = false;
    for (const n of args) {
      try {
        found.push(await ctx.client().json('GET', `/images/${enc(n)}/json`));
      } catch (e) {
        if (!(e instanceof DaemonError) || e.status !== 404) throw e;
        failed = true;
        ctx.stderr.write(`Error: No such image: ${n}\n`);
      }
    }
    if (found.length || !f.str('format')) ctx.stdout.write(formatInspect(found, f.str('format')));
    return failed ? 1 : 0;
  },
};

const imagePrune: Command = {
  spec: {
    name: 'image prune',
    usage: '[OPTIONS]',
    summary: 'Remove unused images',
    maxArgs: 0,
    flags: [
      { long: 'all', short: 'a', kind: 'bool', help: 'Remove all unused images, not just dangling ones' },
      { long: 'filter', kind: 'list', help: "Provide filter values (e.g. 'until=<timestamp>')", arg: 'filter' },
      { long: 'force', short: 'f', kind: 'bool', help: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, f) {
    const all = f.bool('all');
    const warning = all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
    if (!f.bool('force') && !(await confirm(ctx, warning))) throw declined();
    const r = await pruneImages(ctx, all, f.list('filter'));
    ctx.stdout.write(r.text);
    return 0;
  },
};

export async function pruneImages(ctx: Context, all: boolean, filters: string[]): Promise<{ text: string; reclaimed: number }> {
  const r = await ctx.client().json<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed: number }>('POST', '/images/prune', {
    query: { filters: filtersJson([...filters, `dangling=${all ? 'false' : 'true'}`]) },
  });
  let text = '';
  if (r.ImagesDeleted?.length) text += `Deleted Images:\n${r.ImagesDeleted.map((d) => (d.Untagged ? `untagged: ${d.Untagged}` : `deleted: ${d.Deleted}`)).join('\n')}\n\n`;
  text += `Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`;
  return { text, reclaimed: r.SpaceReclaimed ?? 0 };
}

const build: Command = {
  spec: { name: 'build', usage: '[OPTIONS] PATH | URL | -', summary: 'Build an image from a Dockerfile', flags: [], stopAtPositional: true },
  async run() {
    throw new CliError('berth build is not supported yet (the builder comes in a later issue)');
  },
};

/** The key `docker login` files credentials under: the host, or Docker Hub's v1 URL. */
export function loginKey(server: string | undefined): string {
  const raw = (server ?? '').trim();
  if (raw === '' || /^(https?:\/\/)?(index\.|registry-1\.)?docker\.io(\/.*)?$/i.test(raw)) return 'https://index.docker.io/v1/';
  return raw.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]!;
}

type DockerConfigFile = { auths?: Record<string, { auth?: string; identitytoken?: string }> } & Record<string, unknown>;

function readDockerConfig(file: string): DockerConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
    return doc as DockerConfigFile;
  } catch (e) {
    throw new CliError(`${file}: ${(e as Error).message}`, { hint: 'fix or remove the file' });
  }
}

/** Rewrites config.json (0600, through a temp file and a rename), keeping what else it holds. */
function writeDockerConfig(file: string, doc: DockerConfigFile): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(doc, null, '\t') + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

function readPasswordFromStdin(ctx: Context): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    ctx.stdin.on('data', (c: Buffer | string) => chunks.push(Buffer.from(c)));
    ctx.stdin.once('end', () => resolve(Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')));
    ctx.stdin.once('error', reject);
  });
}

const login: Command = {
  spec: {
    name: 'login',
    usage: '[OPTIONS] [SERVER]',
    summary: 'Log in to a registry',
    maxArgs: 1,
    flags: [
      { long: 'username', short: 'u', kind: 'string', help: 'Username' },
      { long: 'password', short: 'p', kind: 'string', help: 'Password' },
      { long: 'password-stdin', kind: 'bool', help: 'Take the password from stdin' },
    ],
  },
  async run(ctx, f, [server]) {
    const username = f.str('username');
    let password = f.str('password');
    if (f.bool('password-stdin')) {
      if (password !== undefined) throw new CliError('--password and --password-stdin are mutually exclusive');
      if (!username) throw new CliError('Must provide --username with --password-stdin');
      password = await readPasswordFromStdin(ctx);
    } else if (password !== undefined) {
      ctx.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (!username || password === undefined || password === '') throw new CliError('Error: username and password are required', { hint: 'berth login -u USER --password-stdin [SERVER]' });
    const key = loginKey(server);
    const r = await ctx.client().json<{ Status: string; IdentityToken?: string }>('POST', '/auth', { body: { username, password, serveraddress: key } });
    const file = path.join(dockerConfigDir(ctx.env), 'config.json');
    const doc = readDockerConfig(file);
    doc.auths = { ...(doc.auths ?? {}), [key]: r.IdentityToken ? { auth: Buffer.from(`${username}:`).toString('base64'), identitytoken: r.IdentityToken } : { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
    writeDockerConfig(file, doc);
    ctx.stdout.write(`${r.Status || 'Login Succeeded'}\n`);
    return 0;
  },
};

const logout: Command = {
  spec: { name: 'logout', usage: '[SERVER]', summary: 'Log out from a registry', maxArgs: 1, flags: [] },
  async run(ctx, _f, [server]) {
    const key = loginKey(server);
    const file = path.join(dockerConfigDir(ctx.env), 'config.json');
    const doc = readDockerConfig(file);
    if (!doc.auths || !(key in doc.auths)) {
      ctx.stdout.write(`Not logged in to ${key}\n`);
      return 0;
    }
    ctx.stdout.write(`Removing login credentials for ${key}\n`);
    delete doc.auths[key];
    writeDockerConfig(file, doc);
    return 0;
  },
};

export const commands: Record<string, Command> = {
  login,
  logout,
  images,
  pull,
  push,
  tag,
  rmi,
  save,
  load,
  import: importCmd,
  history,
  'image inspect': imageInspect,
  'image prune': imagePrune,
  build,
};
