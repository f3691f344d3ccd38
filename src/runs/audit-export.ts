import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { toIso } from '../shared/clock.js';
import { type ExportManifest, exportKey } from './audit-model.js';

/** What the body writer reports once it has streamed every entry. */
export interface ExportBody {
  to_seq: number;
  entry_count: number;
  head_hash: string;
}

/** How many names of one hour are tried before giving up (HH, HH-<from>, HH-<from>-2, …). */
const MAX_KEY_ATTEMPTS = 1000;

/**
 * Writes one audit export into `root` the way an object store would hold it: the NDJSON object
 * `audit/YYYY/MM/DD/HH.ndjson` and its manifest `…/HH.manifest.json`, for the UTC hour of the
 * export. Each object is written to a temporary file, fsynced, and published under its final
 * name with link(2), which refuses to replace an existing name (like an object store's
 * if-none-match): a reader never sees half an object, and no object is ever overwritten. When
 * the hour's name is taken (an earlier export of the same hour, or the leftover of an export
 * that crashed before its ledger row), the next free one of `HH-<from_seq>`, `HH-<from_seq>-2`, …
 * is used. The NDJSON object is published before its manifest, so an object without a manifest
 * is an interrupted export whose entries the next export carries again.
 */
export async function publishExport(opts: {
  root: string;
  exportedAt: number;
  fromSeq: number;
  prevHeadHash: string;
  /** Streams the NDJSON lines through `write` and says what it wrote. */
  body: (write: (chunk: string) => Promise<void>) => Promise<ExportBody>;
}): Promise<ExportManifest> {
  const dir = join(opts.root, dirname(exportKey(opts.exportedAt, opts.fromSeq, 0)));
  await mkdir(dir, { recursive: true });
  const temps: string[] = [];
  try {
    const dataTemp = join(dir, `.tmp-${randomUUID()}.ndjson`);
    temps.push(dataTemp);
    const hash = createHash('sha256');
    let bytes = 0;
    const fh = await open(dataTemp, 'wx', 0o644);
    let body: ExportBody;
    try {
      body = await opts.body(async (chunk) => {
        const buf = Buffer.from(chunk, 'utf8');
        hash.update(buf);
        bytes += buf.length;
        await fh.write(buf);
      });
      await fh.sync();
    } finally {
      await fh.close();
    }

    let key: string | null = null;
    for (let attempt = 0; attempt < MAX_KEY_ATTEMPTS && key === null; attempt++) {
      const candidate = exportKey(opts.exportedAt, opts.fromSeq, attempt);
      // A stray manifest without its data object also makes a name taken.
      if (existsSync(join(opts.root, `${candidate}.manifest.json`))) continue;
      if (await publish(dataTemp, join(opts.root, `${candidate}.ndjson`))) key = candidate;
    }
    if (key === null) throw new Error(`no free export name in ${dir}`);

    const manifest: ExportManifest = {
      format: 'runplane-audit-export/1',
      from_seq: opts.fromSeq,
      to_seq: body.to_seq,
      entry_count: body.entry_count,
      head_hash: body.head_hash,
      prev_head_hash: opts.prevHeadHash,
      object: `${key}.ndjson`,
      sha256: hash.digest('hex'),
      bytes,
      exported_at: toIso(opts.exportedAt) ?? '',
    };
    const manifestTemp = join(dir, `.tmp-${randomUUID()}.manifest.json`);
    temps.push(manifestTemp);
    await writeDurably(manifestTemp, `${JSON.stringify(manifest, null, 2)}\n`);
    if (!(await publish(manifestTemp, join(opts.root, `${key}.manifest.json`))))
      throw new Error(`export manifest ${key}.manifest.json appeared while exporting`);
    await syncDir(dir);
    return manifest;
  } finally {
    for (const t of temps) await unlink(t).catch(() => undefined);
  }
}

/** Gives `temp` the name `target` unless that name exists; false when it does. */
async function publish(temp: string, target: string): Promise<boolean> {
  try {
    await link(temp, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // Filesystems without hard links: check, then rename (the exporter is the only writer here).
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
      if (existsSync(target)) return false;
      await rename(temp, target);
      return true;
    }
    throw err;
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx', 0o644);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes the new names themselves durable (a directory entry survives a power loss once synced). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
