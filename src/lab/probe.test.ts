import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EchoStream, gapStats, message, MESSAGE_BYTES, parsePingLine, unwrapSeq } from './probe.js';

void test('parsePingLine reads replies, duplicates and the summary of busybox ping (and iputils replies)', () => {
  assert.deepEqual(parsePingLine('64 bytes from 10.77.1.5: seq=0 ttl=64 time=0.059 ms'), { kind: 'reply', seq: 0, dup: false, rttMs: 0.059 });
  assert.deepEqual(parsePingLine('64 bytes from 10.77.1.5: seq=7 ttl=64 time=1.2 ms (DUP!)'), { kind: 'reply', seq: 7, dup: true, rttMs: 1.2 });
  assert.deepEqual(parsePingLine('64 bytes from 10.77.1.5: icmp_seq=65535 ttl=64 time=0.071 ms'), { kind: 'reply', seq: 65535, dup: false, rttMs: 0.071 });
  assert.deepEqual(parsePingLine('971 packets transmitted, 969 packets received, 0% packet loss'),
    { kind: 'summary', transmitted: 971, received: 969 });
  assert.deepEqual(parsePingLine('77 packets transmitted, 75 received, 2.6% packet loss, time 418ms'),
    { kind: 'summary', transmitted: 77, received: 75 });
  for (const other of ['PING 10.77.1.5 (10.77.1.5): 56 data bytes', '', '--- 10.77.1.5 ping statistics ---',
    'round-trip min/avg/max = 0.015/0.042/0.496 ms', 'From 10.77.0.2 icmp_seq=5 Destination Host Unreachable']) {
    assert.equal(parsePingLine(other), undefined, other);
  }
});

void test('unwrapSeq keeps counting across the 16-bit wrap and tolerates late replies', () => {
  const table: [number, number, number][] = [
    [0, 1, 1], [1, 2, 2], [65534, 65535, 65535], [65535, 0, 65536], [65536, 1, 65537],
    [65537, 65535, 65535], [131071, 3, 131075], [10, 8, 8], [0, 0, 0],
  ];
  for (const [prev, raw, want] of table) assert.equal(unwrapSeq(prev, raw), want, `${prev} ${raw}`);
});

void test('gapStats: longest gap between consecutive times and the stalls over the threshold', () => {
  assert.deepEqual(gapStats([100, 105, 110, 610, 615], 0, 50), { maxMs: 500, stalls: [{ atMs: 110, gapMs: 500 }] });
  assert.deepEqual(gapStats([1000, 1005.04], 1000, 50), { maxMs: 5, stalls: [] });
  assert.deepEqual(gapStats([], 0, 50), { maxMs: 0, stalls: [] }, 'no times, no end: nothing to measure');
  assert.deepEqual(gapStats([7], 0, 50), { maxMs: 0, stalls: [] });
  assert.deepEqual(gapStats([10, 20, 60], 5, 30, 65), { maxMs: 40, stalls: [{ atMs: 15, gapMs: 40 }] }, 'a short tail');
  assert.deepEqual(gapStats([10, 20], 0, 50, 320), { maxMs: 300, stalls: [{ atMs: 20, gapMs: 300 }] }, 'an outage still on at the end');
  assert.deepEqual(gapStats([], 100, 50, 3100), { maxMs: 3000, stalls: [{ atMs: 0, gapMs: 3000 }] }, 'never a reply: the whole run');
  assert.equal(gapStats([10, 20], 0, 50, 15).maxMs, 10, 'an end before the last time adds nothing');
});

void test('the TCP messages are fixed-size and numbered', () => {
  assert.equal(message(0).toString(), '00000000\n');
  assert.equal(message(123).toString(), '00000123\n');
  assert.equal(message(1e8 + 5).toString(), '00000005\n');
  assert.equal(message(42).length, MESSAGE_BYTES);
});

void test('EchoStream accepts the sent bytes back in any chunking, and notices a wrong, missing or extra byte', () => {
  const s = new EchoStream();
  const sent = Buffer.concat([s.next(), s.next(), s.next()]);
  assert.equal(s.sent, 27);
  assert.equal(s.complete, false);
  assert.ok(s.accept(sent.subarray(0, 4)));
  assert.ok(s.accept(sent.subarray(4, 20)));
  assert.equal(s.complete, false, 'seven bytes still out');
  assert.ok(s.accept(sent.subarray(20)));
  assert.equal(s.complete, true);
  assert.equal(s.echoed, 27);

  const bad = new EchoStream();
  const m = bad.next();
  m[3] = 0x41;
  assert.equal(bad.accept(m), false);
  assert.equal(bad.complete, false);

  const extra = new EchoStream();
  const e = extra.next();
  assert.equal(extra.accept(Buffer.concat([e, Buffer.from('0')])), false, 'more came back than was sent');

  const reordered = new EchoStream();
  const a = reordered.next();
  const b = reordered.next();
  assert.equal(reordered.accept(Buffer.concat([b, a])), false);
});
