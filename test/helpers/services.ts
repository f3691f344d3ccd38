import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'nats';
import pg from 'pg';

/**
 * Service availability for suites that need Postgres, NATS or Slurm. A missing service skips
 * its suite with one line, unless RUNPLANE_TEST_REQUIRE names it: then the suite fails.
 */
export const PG_URL = process.env.RUNPLANE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const required = new Set(
  (process.env.RUNPLANE_TEST_REQUIRE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** NATS with JetStream enabled (the event router's tests). */
export const NATS_URL = process.env.RUNPLANE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

async function natsReachable(): Promise<boolean> {
  try {
    const nc = await connect({ servers: NATS_URL, timeout: 2000, maxReconnectAttempts: 0 });
    try {
      await (await nc.jetstreamManager({ timeout: 2000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/** Debian's Chromium, driven by playwright-core (the dashboard's browser tests); never a downloaded browser. */
export const CHROMIUM_PATH = process.env.RUNPLANE_TEST_CHROMIUM ?? '/usr/bin/chromium';

async function browserLaunches(): Promise<boolean> {
  if (!existsSync(CHROMIUM_PATH)) return false;
  try {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--no-sandbox'],
      timeout: 30_000,
    });
    await browser.close();
    return true;
  } catch {
    return false;
  }
}

/** A Slurm cluster this machine can submit to (bench/slurm/setup.sh sets up a single-node one). */
async function slurmReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('squeue', ['-h', '-o', '%i'], { timeout: 10_000 }, (err) => resolve(err === null));
  });
}

export async function serviceAvailable(name: 'postgres' | 'nats' | 'browser' | 'slurm'): Promise<boolean> {
  const ok =
    name === 'postgres'
      ? await pgReachable()
      : name === 'nats'
        ? await natsReachable()
        : name === 'browser'
          ? await browserLaunches()
          : name === 'slurm'
            ? await slurmReachable()
            : false;
  if (!ok) {
    if (required.has(name)) throw new Error(`${name} is required (RUNPLANE_TEST_REQUIRE) but not reachable`);
    console.warn(`[skip] ${name} is not reachable; its suite is skipped`);
  }
  return ok;
}
