#!/usr/bin/env node
// Writes docs/errors.md from the catalogue (src/errors/catalogue.ts, compiled). Run after a build
// whenever a code is added; a unit test fails while the two differ.
import { writeFileSync } from 'node:fs';
const { CATALOGUE } = await import(new URL('../dist/src/errors/catalogue.js', import.meta.url));
const rows = Object.entries(CATALOGUE).map(([code, s]) => `| \`${code}\` | ${s.httpStatus} | ${s.retryable ? 'yes' : 'no'} | ${s.summary} |`);
const text = `# Error codes

Every error that leaves Ferry — an API answer, a CLI failure — carries one of these codes. A code
keeps its meaning forever; a new meaning gets a new code. The API answers
\`{"error":{"code":"…","message":"…"}}\` with the status below; the CLI prints
\`error CODE: sentence\` on stderr (with \`--json\`, the same document on stdout) and exits non-zero.
"Retryable" means the same request may succeed later without change.

| code | HTTP | retryable | meaning |
|---|---|---|---|
${rows.join('\n')}
`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), text);
console.log(`docs/errors.md: ${rows.length} codes`);
