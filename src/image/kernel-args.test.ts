import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GUEST_READY_MARKER, guestKernelArgs } from './index.js';

void test('guestKernelArgs: the documented command line', () => {
  assert.equal(
    guestKernelArgs({ ip: '10.77.1.5', prefixLength: 16, gateway: '10.77.0.1', name: 't1', testMemMiB: 32 }),
    'console=ttyS0 quiet panic=-1 ferry.ip=10.77.1.5/16 ferry.gw=10.77.0.1 ferry.name=t1 ferry.testmem=32',
  );
});

void test('guestKernelArgs: gateway optional, test memory defaults to 32 MiB', () => {
  assert.equal(
    guestKernelArgs({ ip: '192.168.0.9', prefixLength: 24, name: 'web-1' }),
    'console=ttyS0 quiet panic=-1 ferry.ip=192.168.0.9/24 ferry.name=web-1 ferry.testmem=32',
  );
  assert.match(guestKernelArgs({ ip: '10.0.0.2', prefixLength: 8, name: 'a', testMemMiB: 200 }), / ferry\.testmem=200$/);
});

void test('guestKernelArgs: rejects values that would break or inject into the command line', () => {
  const base = { ip: '10.77.1.5', prefixLength: 16, name: 't1' };
  const bad: Partial<typeof base & { gateway: string; testMemMiB: number }>[] = [
    { ip: '10.77.1' }, { ip: '10.77.1.256' }, { ip: '10.77.1.5 init=/bin/sh' }, { ip: '' },
    { prefixLength: 0 }, { prefixLength: 33 }, { prefixLength: 16.5 },
    { gateway: 'router' }, { gateway: '10.0.0.1 quiet' },
    { name: '' }, { name: 'has space' }, { name: '-lead' }, { name: 'x'.repeat(64) },
    { testMemMiB: 0 }, { testMemMiB: -4 }, { testMemMiB: 1.5 },
  ];
  for (const b of bad) assert.throws(() => guestKernelArgs({ ...base, ...b }), { code: 'INVALID_INPUT' }, JSON.stringify(b));
});

void test('the ready marker is the one the workload prints', () => {
  assert.equal(GUEST_READY_MARKER, 'FERRY-GUEST-READY');
});
