import { join } from 'node:path';

/** Where Ferry keeps CLI state (labs, contexts). Tests point FERRY_HOME at a folder of their own. */
export const ferryHome = (): string => process.env.FERRY_HOME ?? '/var/lib/ferry';

/** Where built artefacts shared by every lab and test live (the guest image, downloaded packages). */
export const ferryCache = (): string => process.env.FERRY_CACHE ?? '/var/cache/ferry';

export const labDir = (name: string): string => join(ferryHome(), 'labs', name);
export const contextFile = (): string => join(ferryHome(), 'context.json');
export const imageDir = (): string => join(ferryCache(), 'image');

/** The repository root (…/dist/src/util → …). */
export const repoRoot = (): string => new URL('../../../', import.meta.url).pathname;
