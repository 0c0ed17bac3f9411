import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDb } from '../util/index.js';
import { AuditLog } from './audit.js';
import { hashToken, roleAllows, TokenStore } from './tokens.js';

test('tokens: random, shown once, stored only as a hash; verify, list, revoke', () => {
  const db = openDb(':memory:');
  const s = new TokenStore(db);
  const a = s.create('ci-deploy', 'operator');
  const b = s.create('alice@example.org', 'viewer');
  assert.match(a.token, /^ferry_[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  assert.notEqual(a.token, b.token);
  const stored = db.prepare('SELECT * FROM tokens').all() as Record<string, unknown>[];
  assert.ok(!JSON.stringify(stored).includes(a.token), 'the secret is not in the database');
  assert.ok(stored.some((r) => r.hash === hashToken(a.token)));
  assert.deepEqual(s.verify(a.token)?.name, 'ci-deploy');
  assert.ok(s.verify(a.token)?.lastUsedAt, 'a use is noted');
  assert.equal(s.verify(`${a.token}x`), undefined);
  assert.equal(s.verify('nope'), undefined);
  assert.deepEqual(s.list().map((t) => t.name).sort(), ['alice@example.org', 'ci-deploy']);
  assert.ok(s.list().every((t) => !('token' in t) && !('hash' in t)), 'a list shows no secrets');
  assert.equal(s.revoke(a.id).revoked, true);
  assert.equal(s.verify(a.token), undefined, 'a revoked token no longer works');
  assert.equal(s.revoke(a.id).revoked, true, 'revoking twice is no error');
  assert.throws(() => s.revoke('ffff'), { code: 'TOKEN_NOT_FOUND' });
  for (const name of ['', 'has space', '../x', 'x'.repeat(65)]) assert.throws(() => s.create(name, 'admin'), { code: 'INVALID_INPUT' }, name);
  assert.throws(() => s.create('root', 'superuser' as 'admin'), { code: 'INVALID_INPUT' });
  db.close();
});

test('roles: each includes the ones before it', () => {
  const cases: [Parameters<typeof roleAllows>[0], Parameters<typeof roleAllows>[1], boolean][] = [
    ['viewer', 'viewer', true], ['viewer', 'operator', false], ['viewer', 'admin', false],
    ['operator', 'viewer', true], ['operator', 'operator', true], ['operator', 'admin', false],
    ['admin', 'viewer', true], ['admin', 'operator', true], ['admin', 'admin', true],
  ];
  for (const [have, need, ok] of cases) assert.equal(roleAllows(have, need), ok, `${have} → ${need}`);
});

test('audit log: appended entries come back newest first', () => {
  const db = openDb(':memory:');
  const log = new AuditLog(db);
  log.append({ tokenId: 't1', who: 'ci', method: 'POST', route: '/v1/vms', vm: 'web', job: null, status: 201 });
  log.append({ tokenId: null, who: 'local-socket', method: 'DELETE', route: '/v1/vms/:name', vm: 'web', job: null, status: 200 });
  const l = log.list(10);
  assert.deepEqual(l.map((e) => [e.who, e.method, e.status]), [['local-socket', 'DELETE', 200], ['ci', 'POST', 201]]);
  assert.equal(log.list(1).length, 1);
  db.close();
});

test('a token still verifies when its last use cannot be written (a full or read-only state disk)', () => {
  const db = openDb(':memory:');
  const s = new TokenStore(db);
  const a = s.create('ops', 'operator');
  db.pragma('query_only = ON');
  assert.equal(s.verify(a.token)?.name, 'ops');
});
