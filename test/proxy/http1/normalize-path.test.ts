import t from 'tap';
import { normalizeTarget, removeDotSegments } from '../../../proxy/http1/normalize-path.js';

t.test('origin-form: dot segments and merged slashes, query untouched', async (t) => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['/a/b/../../../../c', '/c'],
    ['/../a/b', '/a/b'],
    ['/./a/b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a/b/.%2e/c', '/a/c'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2e./c', '/a/c'],
    ['/a/b/%2E/c', '/a/b/c'],
    ['//a//b///c', '/a/b/c'],
    ['/a/b/c//', '/a/b/c/'],
    ['/a//b?a=///c/../d', '/a/b?a=///c/../d'],
    ['/a//b?', '/a/b?'],
    ['//a/?b', '/a/?b'],
    ['/v1//request-landing', '/v1/request-landing'],
    ['/v1/./x/../request-landing?id=1', '/v1/request-landing?id=1'],
    ['/a.b/..c/c..', '/a.b/..c/c..'],
    ['/%c0%af', '/%c0%af'],
    ['/a%2eb', '/a%2eb'],
  ];
  for (const [input, want] of cases) t.same(normalizeTarget(input), { path: want }, input);
});

t.test('absolute-form returns the authority', async (t) => {
  t.same(normalizeTarget('http://deathstar.default.svc/v1//x?y'), { path: '/v1/x?y', authority: 'deathstar.default.svc' });
  t.same(normalizeTarget('HTTP://h:8080'), { path: '/', authority: 'h:8080' });
  t.same(normalizeTarget('http://h?q=1'), { path: '/?q=1', authority: 'h' });
  t.same(normalizeTarget('https://[::1]:1/a/../b'), { path: '/b', authority: '[::1]:1' });
  t.same(normalizeTarget('http://user@h/'), { error: 'L7G_ERR_TARGET_AUTHORITY' });
  t.same(normalizeTarget('http:///x'), { error: 'L7G_ERR_TARGET_AUTHORITY' });
  t.same(normalizeTarget('ftp://h/x'), { error: 'L7G_ERR_TARGET_FORM' });
});

t.test('escaped slashes redirect to the unescaped, normalised path', async (t) => {
  t.same(normalizeTarget('/a%2Fb'), { redirect: '/a/b' });
  t.same(normalizeTarget('/a%2fb%2F%2f../c?x=%2F'), { redirect: '/a/c?x=%2F' });
  t.same(normalizeTarget('/a%5cb'), { redirect: '/a/b' });
  t.same(normalizeTarget('/a%5C..%5Cetc'), { redirect: '/etc' });
  t.same(normalizeTarget('/a?x=%2F'), { path: '/a?x=%2F' }, 'only the path triggers it');
});

t.test('rejections', async (t) => {
  const cases: [string, string, string?][] = [
    ['/a#frag', 'L7G_ERR_TARGET_FRAGMENT'],
    ['/a?b#c', 'L7G_ERR_TARGET_FRAGMENT'],
    ['/a\\b', 'L7G_ERR_TARGET_BACKSLASH'],
    ['/a/..\\c', 'L7G_ERR_TARGET_BACKSLASH'],
    ['/a%zz', 'L7G_ERR_TARGET_BAD_ESCAPE'],
    ['/a%2', 'L7G_ERR_TARGET_BAD_ESCAPE'],
    ['/AAAAA%%0000/abc', 'L7G_ERR_TARGET_BAD_ESCAPE'],
    ['/xyz/.%00../abc', 'L7G_ERR_TARGET_NUL'],
    ['*', 'L7G_ERR_TARGET_ASTERISK', 'GET'],
    ['*', 'L7G_ERR_TARGET_ASTERISK'],
    ['a/b', 'L7G_ERR_TARGET_FORM'],
    ['example.com:443', 'L7G_ERR_TARGET_FORM'],
  ];
  for (const [input, code, method] of cases) t.same(normalizeTarget(input, method), { error: code }, `${input} ${method ?? ''}`);
  t.same(normalizeTarget('*', 'OPTIONS'), { path: '*' });
});

t.test('clean paths come back as the same string', async (t) => {
  const target = '/api/v1/items?id=7';
  const r = normalizeTarget(target);
  t.ok('path' in r && r.path === target);
});

t.test('removeDotSegments follows RFC 3986 §5.2.4 examples', async (t) => {
  t.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g');
  t.equal(removeDotSegments('/mid/content=5/../6'), '/mid/6');
});

t.test('a dot segment hidden behind ;parameters is refused (servlet containers would climb on it)', async (t) => {
  t.same(normalizeTarget('/public/..;/admin'), { error: 'L7G_ERR_TARGET_DOT_PARAMS' });
  t.same(normalizeTarget('/public/.;x=1/admin'), { error: 'L7G_ERR_TARGET_DOT_PARAMS' });
  t.same(normalizeTarget('/public/%2e%2e;/admin'), { error: 'L7G_ERR_TARGET_DOT_PARAMS' });
  t.same(normalizeTarget('/public/a;b=1/c'), { path: '/public/a;b=1/c' }, 'ordinary ;parameters are kept');
  t.same(normalizeTarget('/public/...;/c'), { path: '/public/...;/c' }, 'three dots are a name');
});
