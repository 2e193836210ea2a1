// Docker's `User` and `GroupAdd` resolved against the container's own /etc/passwd and
// /etc/group, with Docker's rules: `name`, `uid`, `name:group`, `uid:gid`; a numeric id
// that the files do not know is used as is, an unknown name is an error; supplementary
// groups come from /etc/group membership unless a group is named explicitly. Unknown
// names are InvalidArgument, never NotFound: a 404 on create makes the docker CLI pull.
import { BerthError } from '../../errors.js';
import { readFileInRoot } from './rootfs-files.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The home directory from /etc/passwd ("/" when unknown): HOME when the env has none. */
  home: string;
  /** The passwd name of the user, when it has one. */
  username?: string;
}

export interface ResolveUserOptions {
  rootfs: string;
  /** Docker's `User`: "", "name", "uid", "name:group", "uid:gid". */
  user?: string;
  /** HostConfig.GroupAdd: group names or gids. */
  groupAdd?: readonly string[] | null;
  /** The request field, for messages ("Config.User", "User" of an exec). */
  field?: string;
}

const MAX_ID = 2 ** 31 - 1;

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : -1;
}

/** Entries of an /etc/passwd text; malformed lines and NIS `+`/`-` lines are skipped, as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith('+') || t.startsWith('-')) continue;
    const f = t.split(':');
    if (f.length < 4) continue;
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (uid === undefined || uid < 0 || gid === undefined || gid < 0) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** Entries of an /etc/group text. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith('+') || t.startsWith('-')) continue;
    const f = t.split(':');
    if (f.length < 3) continue;
    const gid = parseId(f[2]);
    if (gid === undefined || gid < 0) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

function rangeError(field: string, value: string): BerthError {
  return new BerthError('InvalidArgument', `${field}: "${value}": uids and gids must be in range 0-${MAX_ID}`);
}

/** Resolves the user a container (or an exec) runs as, reading the rootfs's files safely. */
export function resolveUser(opts: ResolveUserOptions): ExecUser {
  const field = opts.field ?? 'Config.User';
  const spec = opts.user ?? '';
  const colon = spec.indexOf(':');
  const userArg = (colon < 0 ? spec : spec.slice(0, colon)) || '0';
  const groupArg = colon < 0 ? '' : spec.slice(colon + 1);
  if (colon >= 0 && groupArg === '') throw new BerthError('InvalidArgument', `${field}: "${spec}" names no group after ":"`, { hint: 'use "user", "user:group", "uid" or "uid:gid"' });

  let passwd: PasswdEntry[] | undefined;
  let groups: GroupEntry[] | undefined;
  const readPasswd = () => (passwd ??= parsePasswd(readFileInRoot(opts.rootfs, '/etc/passwd') ?? ''));
  const readGroups = () => (groups ??= parseGroup(readFileInRoot(opts.rootfs, '/etc/group') ?? ''));

  const uidArg = parseId(userArg);
  if (uidArg === -1) throw rangeError(field, userArg);
  const found = readPasswd().find((u) => u.name === userArg || (uidArg !== undefined && u.uid === uidArg));
  if (!found && uidArg === undefined) {
    throw new BerthError('InvalidArgument', `${field}: unable to find user ${userArg}: no matching entries in passwd file`, {
      hint: "add the user to the image's /etc/passwd or give a numeric uid",
    });
  }
  const result: ExecUser = {
    uid: found ? found.uid : uidArg!,
    gid: found ? found.gid : 0,
    additionalGids: [],
    home: found?.home || '/',
    ...(found ? { username: found.name } : {}),
  };

  if (groupArg !== '') {
    const gidArg = parseId(groupArg);
    if (gidArg === -1) throw rangeError(field, groupArg);
    const g = readGroups().find((e) => e.name === groupArg || (gidArg !== undefined && e.gid === gidArg));
    if (!g && gidArg === undefined) {
      throw new BerthError('InvalidArgument', `${field}: unable to find group ${groupArg}: no matching entries in group file`, {
        hint: "add the group to the image's /etc/group or give a numeric gid",
      });
    }
    result.gid = g ? g.gid : gidArg!;
  } else if (found) {
    for (const g of readGroups()) if (g.members.includes(found.name) && !result.additionalGids.includes(g.gid)) result.additionalGids.push(g.gid);
  }

  for (const [i, add] of (opts.groupAdd ?? []).entries()) {
    const gid = parseId(add);
    if (gid === -1) throw rangeError(`HostConfig.GroupAdd[${i}]`, add);
    let value = gid;
    if (value === undefined) {
      const g = readGroups().find((e) => e.name === add);
      if (!g) throw new BerthError('InvalidArgument', `HostConfig.GroupAdd[${i}]: unable to find group ${add}: no matching entries in group file`);
      value = g.gid;
    }
    if (!result.additionalGids.includes(value)) result.additionalGids.push(value);
  }
  return result;
}
