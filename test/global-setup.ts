import { execFileSync } from 'node:child_process';

/** End-to-end tests run the built CLI (bin/runplane.js → dist/), so build it once first. */
export default function setup(): void {
  if (process.env.RUNPLANE_TEST_SKIP_BUILD === '1') return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
