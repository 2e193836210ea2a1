// Summarises a V8 .cpuprofile (node --cpu-prof): where a process spent its samples, by
// function (self and inclusive time) and by file. Inclusive time counts a frame once per
// sample however deep it recurses.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** ms by special bucket: (idle), (program), (garbage collector). */
  special: Record<string, number>;
  self: { frame: string; ms: number }[];
  inclusive: { frame: string; ms: number }[];
  byFile: { file: string; ms: number }[];
}

function frameName(n: ProfileNode, strip: string): string {
  const f = n.callFrame;
  const url = f.url.replace(/^file:\/\//, '').replace(strip, '');
  if (!url) return f.functionName || '(anonymous)';
  return `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}`;
}

/** strip: a path prefix removed from file names (the repository root). */
export function summariseProfile(file: string, strip: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const byFile = new Map<string, number>();
  const special: Record<string, number> = {};
  let totalMs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the gap before sample i; the next gap is how long sample i lasted.
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    totalMs += ms;
    const leaf = byId.get(p.samples[i]!)!;
    const name = leaf.callFrame.functionName;
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') {
      special[name] = (special[name] ?? 0) + ms;
      continue;
    }
    const leafName = frameName(leaf, strip);
    self.set(leafName, (self.get(leafName) ?? 0) + ms);
    const url = leaf.callFrame.url.replace(/^file:\/\//, '').replace(strip, '') || '(native/builtin)';
    byFile.set(url, (byFile.get(url) ?? 0) + ms);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (n.callFrame.functionName === '(root)') break;
      const key = frameName(n, strip);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
    }
  }
  const sorted = <K extends string>(m: Map<string, number>, k: K) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ [k]: name, ms }) as { [P in K]: string } & { ms: number });
  return { totalMs, special, self: sorted(self, 'frame'), inclusive: sorted(inclusive, 'frame'), byFile: sorted(byFile, 'file') };
}
