import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYamlDocuments, formatYamlPath } from './yaml.js';

test('formatYamlPath writes dotted paths with indexes and quoted odd keys', () => {
  assert.equal(formatYamlPath(['spec', 'containers', 1, 'ports', 0, 'containerPort']), 'spec.containers[1].ports[0].containerPort');
  assert.equal(formatYamlPath(['metadata', 'labels', 'app.kubernetes.io/name']), 'metadata.labels["app.kubernetes.io/name"]');
  assert.equal(formatYamlPath([]), '');
});

test('documents keep their index and find the line of a path, or of its nearest parent', () => {
  const docs = parseYamlDocuments('a: 1\n---\n---\nb:\n  c:\n  - x\n  - y\n', 'f.yaml');
  assert.deepEqual(docs.map((d) => [d.index, d.value]), [[0, { a: 1 }], [1, null], [2, { b: { c: ['x', 'y'] } }]]);
  const d = docs[2]!;
  assert.equal(d.lineOf(['b', 'c', 1]), 7);
  assert.equal(d.lineOf(['b', 'c', 5, 'z']), 6);
  assert.equal(d.lineOf(['nope']), 4);
});

test('syntax errors name the file, the document and the line', () => {
  assert.throws(() => parseYamlDocuments('a: 1\n---\nb: [1, 2\n', 'f.yaml'), /^BerthError: f\.yaml: document 1: YAML syntax: line \d+/);
});

test('alias bombs are refused as bad input', () => {
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 6; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill('*' + String.fromCharCode(96 + i)).join(', ')}]`);
  assert.throws(() => parseYamlDocuments(levels.join('\n') + '\n', 'bomb.yaml'), /^BerthError: bomb\.yaml: document 0: /);
});
