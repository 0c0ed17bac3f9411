/**
 * The test guest image: a Debian kernel and an initramfs with busybox and the workload
 * (guest/), built from Debian packages by `ferry image build`.
 *
 * The guest prints {@link GUEST_READY_MARKER} on ttyS0 once it serves HTTP on port 80 at
 * the address {@link guestKernelArgs} gives it.
 */
export { buildImage, guestSourceDir, type BuildImageOptions, type BuiltImage } from './build.js';
export { findImage, type GuestImage } from './store.js';
export { guestKernelArgs, GUEST_READY_MARKER, DEFAULT_TEST_MEM_MIB, type GuestNetArgs } from './kernel-args.js';
export { BUILDER_VERSION, buildKey, type BuildInputs } from './key.js';
