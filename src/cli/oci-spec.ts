// `berth-oci spec`: write the default config.json, refusing to overwrite one.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import { defaultSpec } from '../runtime/default-spec.js';

export function writeSpecFile(bundle: string, rootless: boolean): void {
  const file = join(bundle, 'config.json');
  if (existsSync(file)) throw new BerthError('AlreadyExists', `${file} already exists`, { hint: 'remove it first, or pass another --bundle' });
  writeFileSync(file, JSON.stringify(defaultSpec({ rootless }), null, '\t') + '\n');
}
