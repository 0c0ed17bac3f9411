// Builds the dashboard into web/dist, which ferryd serves at /ui/ (src/api/routes/dashboard.ts).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0, target: 'es2022', sourcemap: false },
  logLevel: 'warn',
});
