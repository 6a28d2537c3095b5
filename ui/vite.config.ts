import { gzipSync } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/** Prints the bundle's total size, raw and gzipped, after each build (docs/ui.md records it). */
function reportBundleSize(): Plugin {
  return {
    name: 'taskstream-bundle-size',
    apply: 'build',
    generateBundle(_options, bundle) {
      const totals = { js: { raw: 0, gzip: 0 }, css: { raw: 0, gzip: 0 } };
      for (const file of Object.values(bundle)) {
        const kind = file.fileName.endsWith('.js') ? 'js' : file.fileName.endsWith('.css') ? 'css' : undefined;
        if (kind === undefined) continue;
        const content = file.type === 'chunk' ? file.code : file.source;
        totals[kind].raw += Buffer.byteLength(content);
        totals[kind].gzip += gzipSync(content).length;
      }
      const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
      this.info(`UI bundle: JavaScript ${kb(totals.js.raw)} (${kb(totals.js.gzip)} gzip), CSS ${kb(totals.css.raw)} (${kb(totals.css.gzip)} gzip)`);
    },
  };
}

export default defineConfig({
  // The gateway serves the build under /ui (services/gateway/src/ui.ts).
  base: '/ui/',
  plugins: [react(), reportBundleSize()],
  // Workspace packages from their TypeScript sources, as everywhere in the repository.
  resolve: { conditions: ['source', 'module', 'browser', 'development|production'] },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024 },
});
