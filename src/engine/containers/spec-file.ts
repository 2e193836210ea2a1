// The OCI config berthd wrote at create (and rewrites on update), read back for each start.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSpec, type Spec } from '../../runtime/index.js';

export function readSpecFile(dir: string): Spec {
  const file = join(dir, 'config.json');
  return parseSpec(readFileSync(file, 'utf8'), file);
}
