import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The dashboard's front-end build: src/dashboard → dist/dashboard, served by `runplane up` at `/`
 * (src/http/dashboard.ts). Everything is bundled (no CDN, system fonts), so the browser loads
 * nothing from outside the controller.
 */
export default defineConfig({
  root: fileURLToPath(new URL('./src/dashboard/', import.meta.url)),
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('./dist/dashboard/', import.meta.url)),
    emptyOutDir: true,
    // The server checks for the manifest to tell a build from the sources.
    manifest: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 300,
  },
});
