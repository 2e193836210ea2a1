import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../errors.js';
import { familiarName, formatReference, parseReference, repositoryName, type Reference } from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;
const D512 = `sha512:${'b'.repeat(128)}`;

// input → normalised full form, as `docker pull` resolves it.
const VALID: Array<[string, string, Reference]> = [
  ['busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }],
  ['library/busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
  ['index.docker.io/busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
  ['index.docker.io/library/busybox:musl', 'docker.io/library/busybox:musl', { domain: 'docker.io', path: 'library/busybox', tag: 'musl' }],
  ['user/app', 'docker.io/user/app:latest', { domain: 'docker.io', path: 'user/app', tag: 'latest' }],
  ['docker.io/user/app:v1', 'docker.io/user/app:v1', { domain: 'docker.io', path: 'user/app', tag: 'v1' }],
  ['a/b/c/d', 'docker.io/a/b/c/d:latest', { domain: 'docker.io', path: 'a/b/c/d', tag: 'latest' }],
  // registry-1.docker.io is a host like any other: no library/ prefix, no rewrite.
  ['registry-1.docker.io/busybox', 'registry-1.docker.io/busybox:latest', { domain: 'registry-1.docker.io', path: 'busybox', tag: 'latest' }],
  ['host:5000/a/b:tag', 'host:5000/a/b:tag', { domain: 'host:5000', path: 'a/b', tag: 'tag' }],
  ['quay.io/coreos/etcd', 'quay.io/coreos/etcd:latest', { domain: 'quay.io', path: 'coreos/etcd', tag: 'latest' }],
  ['localhost/app', 'localhost/app:latest', { domain: 'localhost', path: 'app', tag: 'latest' }],
  ['localhost:5000/app:1', 'localhost:5000/app:1', { domain: 'localhost:5000', path: 'app', tag: '1' }],
  ['127.0.0.1:5000/x/y', '127.0.0.1:5000/x/y:latest', { domain: '127.0.0.1:5000', path: 'x/y', tag: 'latest' }],
  ['[::1]:5000/a', '[::1]:5000/a:latest', { domain: '[::1]:5000', path: 'a', tag: 'latest' }],
  ['[::1]/a:t', '[::1]/a:t', { domain: '[::1]', path: 'a', tag: 't' }],
  ['[2001:db8::1]:443/ns/img', '[2001:db8::1]:443/ns/img:latest', { domain: '[2001:db8::1]:443', path: 'ns/img', tag: 'latest' }],
  // A bare word before the slash is a Docker Hub namespace unless it is localhost, has '.'
  // or ':', or has uppercase letters (which a namespace cannot).
  ['myhost/app', 'docker.io/myhost/app:latest', { domain: 'docker.io', path: 'myhost/app', tag: 'latest' }],
  ['Myhost/app', 'Myhost/app:latest', { domain: 'Myhost', path: 'app', tag: 'latest' }],
  ['example.com:8443/app', 'example.com:8443/app:latest', { domain: 'example.com:8443', path: 'app', tag: 'latest' }],
  ['Example.COM/app', 'Example.COM/app:latest', { domain: 'Example.COM', path: 'app', tag: 'latest' }],
  // A single component never holds a domain, so ':5000' is a tag here (as in Docker).
  ['localhost:5000', 'docker.io/library/localhost:5000', { domain: 'docker.io', path: 'library/localhost', tag: '5000' }],
  ['localhost', 'docker.io/library/localhost:latest', { domain: 'docker.io', path: 'library/localhost', tag: 'latest' }],
  [`busybox@${D}`, `docker.io/library/busybox@${D}`, { domain: 'docker.io', path: 'library/busybox', digest: D }],
  [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`, { domain: 'docker.io', path: 'library/busybox', tag: '1.36', digest: D }],
  [`h:5000/a/b:t@${D}`, `h:5000/a/b:t@${D}`, { domain: 'h:5000', path: 'a/b', tag: 't', digest: D }],
  [`h.io/a@${D512}`, `h.io/a@${D512}`, { domain: 'h.io', path: 'a', digest: D512 }],
  // Separators inside path components.
  ['x/a.b_c__d-e---f', 'docker.io/x/a.b_c__d-e---f:latest', { domain: 'docker.io', path: 'x/a.b_c__d-e---f', tag: 'latest' }],
  ['a.b_c', 'docker.io/library/a.b_c:latest', { domain: 'docker.io', path: 'library/a.b_c', tag: 'latest' }],
  ['0/1', 'docker.io/0/1:latest', { domain: 'docker.io', path: '0/1', tag: 'latest' }],
  // Tags: letters of either case, digits, '_', '.', '-'; may start with '_' or a digit.
  ['a:V1.0_rc-1', 'docker.io/library/a:V1.0_rc-1', { domain: 'docker.io', path: 'library/a', tag: 'V1.0_rc-1' }],
  ['a:_x', 'docker.io/library/a:_x', { domain: 'docker.io', path: 'library/a', tag: '_x' }],
  [`a:${'t'.repeat(128)}`, `docker.io/library/a:${'t'.repeat(128)}`, { domain: 'docker.io', path: 'library/a', tag: 't'.repeat(128) }],
  // From distribution/reference's own table, in normalised form.
  ['test_com', 'docker.io/library/test_com:latest', { domain: 'docker.io', path: 'library/test_com', tag: 'latest' }],
  ['test.com:tag', 'docker.io/library/test.com:tag', { domain: 'docker.io', path: 'library/test.com', tag: 'tag' }],
  ['test.com:5000', 'docker.io/library/test.com:5000', { domain: 'docker.io', path: 'library/test.com', tag: '5000' }],
  ['test:5000/repo', 'test:5000/repo:latest', { domain: 'test:5000', path: 'repo', tag: 'latest' }],
  ['lowercase:Uppercase', 'docker.io/library/lowercase:Uppercase', { domain: 'docker.io', path: 'library/lowercase', tag: 'Uppercase' }],
  ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com/bar/baz/quux:some-long-tag', { domain: 'sub-dom1.foo.com', path: 'bar/baz/quux', tag: 'some-long-tag' }],
  ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io/test.example.com/my-app:test.example.com', { domain: 'b.gcr.io', path: 'test.example.com/my-app', tag: 'test.example.com' }],
  ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com/myimage:xn--n3h.com', { domain: 'xn--n3h.com', path: 'myimage', tag: 'xn--n3h.com' }],
  ['foo_bar.com:8080', 'docker.io/library/foo_bar.com:8080', { domain: 'docker.io', path: 'library/foo_bar.com', tag: '8080' }],
  ['foo/foo_bar.com:8080', 'docker.io/foo/foo_bar.com:8080', { domain: 'docker.io', path: 'foo/foo_bar.com', tag: '8080' }],
  ['192.168.1.1', 'docker.io/library/192.168.1.1:latest', { domain: 'docker.io', path: 'library/192.168.1.1', tag: 'latest' }],
  ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000/repo:5050', { domain: '192.168.1.1:5000', path: 'repo', tag: '5050' }],
  ['[2001:db8::]:5000/repo', '[2001:db8::]:5000/repo:latest', { domain: '[2001:db8::]:5000', path: 'repo', tag: 'latest' }],
  ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]/repo:tag', { domain: '[2001:db8:1:2:3:4:5:6]', path: 'repo', tag: 'tag' }],
  [`test:5000/repo:tag@sha256:${'f'.repeat(64)}`, `test:5000/repo:tag@sha256:${'f'.repeat(64)}`, { domain: 'test:5000', path: 'repo', tag: 'tag', digest: `sha256:${'f'.repeat(64)}` }],
  [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, `docker.io/${'a/'.repeat(127)}a:tag-puts-this-over-max`, { domain: 'docker.io', path: `${'a/'.repeat(127)}a`, tag: 'tag-puts-this-over-max' }],
  [`x/${'a'.repeat(253)}`, `docker.io/x/${'a'.repeat(253)}:latest`, { domain: 'docker.io', path: `x/${'a'.repeat(253)}`, tag: 'latest' }],
];

// input → a fragment the message must contain (it names the bad part).
const INVALID: Array<[string, string]> = [
  ['', 'at least one component'],
  ['Busybox', 'invalid reference "Busybox": repository name must be lowercase'],
  ['docker.io/Library/busybox', 'must be lowercase'],
  ['host:5000/A/b', 'must be lowercase'],
  ['a:a b', 'tag "a b" is invalid'],
  ['a:', 'tag "" is invalid'],
  ['a:-x', 'tag "-x" is invalid'],
  ['a:.x', 'tag ".x" is invalid'],
  [`a:${'t'.repeat(129)}`, `tag "${'t'.repeat(129)}" is invalid`],
  ['a:b:c', 'tag "b:c" is invalid'],
  ['docker.io/a:b/c', 'tag "b/c" is invalid'],
  ['x@sha256:12', 'invalid reference "x@sha256:12": digest "sha256:12" is invalid: sha256 needs 64 lowercase hex digits'],
  ['x@sha256:' + 'A'.repeat(64), 'lowercase hex'],
  ['x@md5:' + 'a'.repeat(32), 'digest "md5:'],
  ['x@' + 'a'.repeat(64), 'is malformed'],
  ['x@', 'digest "" is malformed'],
  [`x@${D}@${D}`, 'is invalid'],
  [`@${D}`, 'at least one component'],
  ['a' + '0'.repeat(63), 'image ID'],
  ['-a', 'path component "-a" is invalid'],
  ['a-', 'path component "a-" is invalid'],
  ['a..b', 'path component "a..b" is invalid'],
  ['a___b', 'path component "a___b" is invalid'],
  ['a_-b', 'path component "a_-b" is invalid'],
  ['a/b!', 'path component "b!" is invalid'],
  ['a//b', 'empty path component'],
  ['a/', 'empty path component'],
  ['/a', 'empty path component'],
  ['docker.io/', 'empty path component'],
  [' busybox', 'path component " busybox" is invalid'],
  ['busybox ', 'path component "busybox " is invalid'],
  // A first component with '.' is a host, so path separators are not allowed in it.
  ['a.b_c/d', 'registry host "a.b_c" is invalid'],
  ['h_x.io/a', 'registry host "h_x.io" is invalid: "h_x"'],
  ['-h.io/a', 'registry host "-h.io" is invalid'],
  ['h..io/a', 'registry host "h..io" is invalid'],
  ['h.io:port/a', 'port "port" is not a number'],
  ['h.io:/a', 'port "" is not a number'],
  ['[::1/a', 'registry host "[::1" is invalid'],
  ['[fe80::1%eth0]:5000/a', 'IPv6'],
  ['[::1]x/a', 'expected [IPv6]:PORT'],
  ['[::1]:x/a', 'port "x"'],
  [`x/${'a'.repeat(254)}`, 'not be more than 255 characters'],
  [`${'a/'.repeat(128)}a:tag`, 'not be more than 255 characters'],
  [':justtag', 'at least one component'],
  ['Uppercase:tag', 'must be lowercase'],
  ['test:5000/Uppercase/lowercase:tag', 'must be lowercase'],
  ['aa/asdf$$^/aa', 'path component "asdf$$^" is invalid'],
  ['[2001:db8::1]', 'path component "[2001" is invalid'],
  ['[2001:db8::1]:5000', 'is invalid'],
  [`validname@invaliddigest:${'f'.repeat(64)}`, 'unsupported algorithm "invaliddigest"'],
  ['[fe80::1%@invalidzone]:5000/repo', 'digest "invalidzone]:5000/repo" is malformed'],
];

describe('parseReference', () => {
  for (const [input, full, expected] of VALID) {
    it(`parses ${JSON.stringify(input.length > 60 ? input.slice(0, 60) + '…' : input)}`, () => {
      const ref = parseReference(input);
      assert.deepEqual(ref, expected);
      assert.equal(formatReference(ref), full);
      // The full form is a fixed point: parsing it again changes nothing.
      assert.deepEqual(parseReference(full), expected);
    });
  }

  for (const [input, fragment] of INVALID) {
    it(`rejects ${JSON.stringify(input.length > 60 ? input.slice(0, 60) + '…' : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (err: unknown) => {
          assert.ok(err instanceof BerthError);
          assert.equal(err.code, 'InvalidArgument');
          assert.ok(err.message.startsWith(`invalid reference ${JSON.stringify(input)}`), err.message);
          assert.ok(err.message.includes(fragment), `${err.message} should contain ${fragment}`);
          return true;
        },
      );
    });
  }

  it('defaults the tag only when there is neither tag nor digest', () => {
    assert.equal(parseReference('a').tag, 'latest');
    assert.equal(parseReference(`a@${D}`).tag, undefined);
    assert.equal(parseReference(`a:x@${D}`).tag, 'x');
  });
});

describe('names', () => {
  const cases: Array<[string, string, string]> = [
    ['busybox', 'docker.io/library/busybox', 'busybox:latest'],
    [`busybox@${D}`, 'docker.io/library/busybox', `busybox@${D}`],
    [`busybox:1@${D}`, 'docker.io/library/busybox', `busybox:1@${D}`],
    ['user/app:2', 'docker.io/user/app', 'user/app:2'],
    // library/ is stripped only for a single remaining component, as Docker does.
    ['library/a/b', 'docker.io/library/a/b', 'library/a/b:latest'],
    ['h:5000/library/x', 'h:5000/library/x', 'h:5000/library/x:latest'],
    ['localhost/a', 'localhost/a', 'localhost/a:latest'],
    ['[::1]:5000/a:t', '[::1]:5000/a', '[::1]:5000/a:t'],
  ];
  for (const [input, repo, familiar] of cases) {
    it(`${input} → ${repo}, ${familiar}`, () => {
      const ref = parseReference(input);
      assert.equal(repositoryName(ref), repo);
      assert.equal(familiarName(ref), familiar);
      // The familiar form parses back to the same reference.
      assert.deepEqual(parseReference(familiarName(ref)), ref);
    });
  }
});
