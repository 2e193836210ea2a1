// Endpoints of the Docker API that berth knows about but does not implement: they answer 501
// with a message naming them (never a silent success, never a confusing 404).

const UNSUPPORTED: { pattern: RegExp; methods?: string[]; note?: string }[] = [
  { pattern: /^\/build$/, note: 'the image builder comes later; build with another tool and load the result with `docker load`' },
  { pattern: /^\/(swarm|nodes|services|tasks|secrets|configs)(\/|$)/, note: 'swarm mode is not supported' },
  { pattern: /^\/plugins\/.+/, note: 'berth has no plugins' },
  { pattern: /^\/(session|distribution|grpc)(\/|$)/ },
  { pattern: /^\/images\/search$/ },
  { pattern: /^\/containers\/[^/]+\/(attach\/ws|checkpoints)(\/|$)/ },
  { pattern: /^\/volumes\/[^/]+$/, methods: ['PUT'], note: 'cluster volumes need swarm' },
];

/** The 501 message for a known but unimplemented endpoint, or null. */
export function unsupportedMessage(method: string, path: string): string | null {
  for (const u of UNSUPPORTED) {
    if (!u.pattern.test(path)) continue;
    if (u.methods && !u.methods.includes(method)) continue;
    return `berth does not implement ${method} ${path}` + (u.note ? `: ${u.note}` : '');
  }
  return null;
}
