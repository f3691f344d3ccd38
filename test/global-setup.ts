import { execFileSync } from 'node:child_process';

/**
 * End-to-end tests run the built CLI (bin/runplane.js → dist/), and the browser tests the
 * dashboard it serves (dist/dashboard), so build both once first.
 */
export default function setup(): void {
  if (process.env.RUNPLANE_TEST_SKIP_BUILD === '1') return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  // Vitest sets NODE_ENV=test, with which Vite would bundle the libraries' development builds.
  execFileSync('npx', ['vite', 'build'], {
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production' },
  });
}
