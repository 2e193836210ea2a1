// The one place that knows the `yaml` package: splits a stream into documents, turns each into
// plain values and keeps what is needed to name a line for a field path in error messages.
import { LineCounter, parseAllDocuments, isNode, type Document } from 'yaml';
import { BerthError } from '../errors.js';

/** A field path as validation builds it: map keys and sequence indexes. */
export type YamlPath = readonly (string | number)[];

export interface YamlDocument {
  /** 0-based position in the stream, counting empty documents too. */
  index: number;
  /** The document as plain values (maps → objects, sequences → arrays); null when empty. */
  value: unknown;
  /** 1-based line where the value at `path` starts; for a missing field, its nearest present parent's. */
  lineOf(path: YamlPath): number | undefined;
}

/** `spec.containers[1].ports[0]` */
export function formatYamlPath(path: YamlPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Parses every document of a YAML stream; syntax errors name the file, document and line. */
export function parseYamlDocuments(text: string, file: string): YamlDocument[] {
  const lines = new LineCounter();
  // YAML 1.2 core schema: `yes`/`on` stay strings, as in Kubernetes' own decoder for JSON-compatible YAML.
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const list: Document.Parsed[] = Array.isArray(docs) ? docs : [];
  const out: YamlDocument[] = [];
  list.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      const problems = doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return `line ${pos.line}: ${e.message.split('\n')[0]}`;
      });
      throw new BerthError('InvalidArgument', `${file}: document ${index}: YAML syntax: ${problems.join('; ')}`, {
        hint: 'fix the YAML syntax',
      });
    }
    let value: unknown = null;
    try {
      value = doc.contents === null ? null : doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // Excessive alias expansion (a "billion laughs" document) fails here, not in parsing.
      throw new BerthError('InvalidArgument', `${file}: document ${index}: ${(err as Error).message}`, { cause: err, hint: 'use fewer YAML aliases' });
    }
    out.push({
      index,
      value,
      lineOf(path: YamlPath): number | undefined {
        for (let n = path.length; n >= 0; n--) {
          const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
          if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
        }
        return undefined;
      },
    });
  });
  return out;
}
