import assert from 'node:assert/strict';
import { test } from 'node:test';
import { debFileName, parseField, parseKernelDepends } from './packages.js';

const META = `Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Description: Linux for 64-bit PCs (meta-package)

Package: linux-image-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)
`;

void test('parseKernelDepends: the pinned kernel package of the first (candidate) stanza', () => {
  assert.deepEqual(parseKernelDepends(META), { name: 'linux-image-6.1.0-56-amd64', version: '6.1.192-2', kernelVersion: '6.1.0-56-amd64' });
});

void test('parseKernelDepends: unpinned and alternative dependencies; nothing when there is no kernel', () => {
  assert.deepEqual(parseKernelDepends('Depends: initramfs-tools | linux-initramfs-tool, linux-image-6.12.9-amd64\n'),
    { name: 'linux-image-6.12.9-amd64', version: undefined, kernelVersion: '6.12.9-amd64' });
  assert.equal(parseKernelDepends('Package: x\nDepends: libc6\n'), undefined);
  assert.equal(parseKernelDepends(''), undefined);
});

void test('parseField and debFileName', () => {
  assert.equal(parseField(META, 'Version'), '6.1.192-2');
  assert.equal(parseField(META, 'Missing'), undefined);
  assert.equal(debFileName({ name: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1' }), 'busybox-static_1%3a1.35.0-4+deb12u1+b1.deb');
});
