import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { parseDuration } from '../../src/shared/duration.js';
import { newId } from '../../src/shared/ids.js';

describe('parseDuration', () => {
  it('reads units and bare seconds', () => {
    expect(parseDuration('1500ms')).toBe(1500);
    expect(parseDuration('15s')).toBe(15_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('3')).toBe(3000);
    expect(parseDuration(0.5)).toBe(500);
  });
  it('rejects nonsense', () => {
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
    expect(() => parseDuration('-1s')).toThrow(/invalid duration/);
  });
});

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({}, {});
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(7878);
    expect(c.workers).toBe(1);
    expect(c.workerTimeoutMs).toBe(60_000);
    expect(c.dataDir.endsWith('.runplane')).toBe(true);
    expect(c.databaseUrl).toBe(`sqlite:${c.dataDir}/runplane.db`);
  });
  it('flags beat env', () => {
    const c = loadConfig(
      { port: 9000, workerTimeoutMs: '5s' },
      { RUNPLANE_PORT: '8000', RUNPLANE_WORKER_TIMEOUT: '90s', RUNPLANE_WORKERS: '3' },
    );
    expect(c.port).toBe(9000);
    expect(c.workerTimeoutMs).toBe(5000);
    expect(c.workers).toBe(3);
  });
  it('beats at least three times per worker timeout unless told otherwise', () => {
    expect(loadConfig({}, {}).workerHeartbeatMs).toBe(5000);
    expect(loadConfig({ workerTimeoutMs: '3s' }, {}).workerHeartbeatMs).toBe(1000);
    expect(loadConfig({ workerTimeoutMs: '3s' }, { RUNPLANE_WORKER_HEARTBEAT: '2s' }).workerHeartbeatMs).toBe(
      2000,
    );
  });
  it('rejects bad values with the variable named', () => {
    expect(() => loadConfig({}, { RUNPLANE_PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig({}, { RUNPLANE_WORKER_TIMEOUT: 'later' })).toThrow(/RUNPLANE_WORKER_TIMEOUT/);
    expect(() => loadConfig({ port: 70000 }, {})).toThrow(/port/);
  });
});

describe('newId', () => {
  it('is prefixed, unique and sorts by creation order within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => newId('job', 1_800_000_000_000));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0]).toMatch(/^job_[0-9a-z]{26}$/);
  });
});
