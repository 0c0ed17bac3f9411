import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from '../errors/index.js';
import { encodeCommand, LineDecoder, parseMessage } from './wire.js';

const isCode = (code: string) => (e: unknown): boolean => e instanceof FerryError && e.code === code;

describe('LineDecoder', () => {
  it('splits several lines in one chunk and strips \\r\\n', () => {
    const d = new LineDecoder();
    assert.deepEqual(d.push(Buffer.from('{"a":1}\r\n{"b":2}\r\n{"c"')), ['{"a":1}', '{"b":2}']);
    assert.equal(d.pending, 4);
    assert.deepEqual(d.push(Buffer.from(':3}\n')), ['{"c":3}']);
    assert.equal(d.pending, 0);
  });

  it('joins a line split across many chunks, even inside a multi-byte character', () => {
    const d = new LineDecoder();
    const bytes = Buffer.from('{"desc":"déjà vu ✓"}\r\n', 'utf8');
    const out: string[] = [];
    for (const b of bytes) out.push(...d.push(Buffer.from([b])));
    assert.deepEqual(out, ['{"desc":"déjà vu ✓"}']);
  });

  it('a "\\r" and "\\n" in separate chunks still end one line', () => {
    const d = new LineDecoder();
    assert.deepEqual(d.push(Buffer.from('{}\r')), []);
    assert.deepEqual(d.push(Buffer.from('\n')), ['{}']);
  });

  it('refuses an overlong line with QMP_PROTOCOL', () => {
    const d = new LineDecoder(10);
    d.push(Buffer.from('12345'));
    assert.throws(() => d.push(Buffer.from('678901')), isCode('QMP_PROTOCOL'));
  });
});

describe('parseMessage', () => {
  it('classifies greeting, return, error and event', () => {
    const g = parseMessage('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "x"}, "capabilities": ["oob"]}}');
    assert.deepEqual(g, { kind: 'greeting', greeting: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'x' }, capabilities: ['oob'] } });
    assert.deepEqual(parseMessage('{"return": {}, "id": 3}'), { kind: 'return', id: 3, value: {} });
    assert.deepEqual(parseMessage('{"id": 4, "error": {"class": "GenericError", "desc": "no"}}'),
      { kind: 'error', id: 4, error: { class: 'GenericError', desc: 'no' } });
    assert.deepEqual(parseMessage('{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "MIGRATION", "data": {"status": "setup"}}'),
      { kind: 'event', event: { event: 'MIGRATION', data: { status: 'setup' }, timestamp: { seconds: 5, microseconds: 6 } } });
  });

  it('gives events without data (STOP, RESUME) an empty object', () => {
    const m = parseMessage('{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "STOP"}');
    assert.deepEqual(m, { kind: 'event', event: { event: 'STOP', data: {}, timestamp: { seconds: 5, microseconds: 6 } } });
  });

  for (const [name, line] of [
    ['not JSON', 'hello'],
    ['a JSON array', '[1,2]'],
    ['an unknown object', '{"hello": 1}'],
    ['an error without desc', '{"error": {"class": "GenericError"}, "id": 1}'],
    ['a greeting without version', '{"QMP": {"capabilities": []}}'],
    ['an event whose data is a string', '{"event": "STOP", "data": "x"}'],
  ] as const) {
    it(`refuses ${name} with QMP_PROTOCOL`, () => {
      assert.throws(() => parseMessage(line), isCode('QMP_PROTOCOL'));
    });
  }
});

describe('encodeCommand', () => {
  it('omits arguments when there are none and ends with a newline', () => {
    assert.equal(encodeCommand(1, 'query-status', undefined), '{"execute":"query-status","id":1}\n');
    assert.equal(encodeCommand(2, 'migrate', { uri: 'tcp:1.2.3.4:5' }),
      '{"execute":"migrate","id":2,"arguments":{"uri":"tcp:1.2.3.4:5"}}\n');
  });
});
