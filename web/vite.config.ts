import { defineConfig } from 'vite';

// Relative asset paths (base './') so that the same dist/ works when embedded in
// `flowlake serve`, under any prefix, and on S3/CloudFront as plain files.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1200,
    sourcemap: false,
  },
  server: {
    // `npm run dev` proxies the API to a running `flowlake serve` (FLOWLAKE_API, default :8080).
    proxy: { '/api': process.env.FLOWLAKE_API ?? 'http://127.0.0.1:8080' },
  },
});
