import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, unlink } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';

/** A declared output file with its expected checksum. */
export interface DeclaredOutput {
  path: string;
  sha256?: string | undefined;
}

export interface VerificationProblem {
  path: string;
  expected: string;
  /** The file's checksum, or null when it could not be read (missing). */
  actual: string | null;
  error: string | null;
  /** Where the file was moved (null when there was nothing to move). */
  moved_to: string | null;
}

/** SHA-256 of a file, streamed (large game databases never sit in memory). */
export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

export function resolveOutput(path: string, workDir: string): string {
  return isAbsolute(path) ? path : join(workDir, path);
}

/**
 * Verifies every output that declares a sha256. Mismatched files are moved into
 * `quarantineDir` (they must not feed the next stage, and are kept for inspection).
 * Returns the problems; none means every checksum matched.
 */
export async function verifyOutputs(
  outputs: readonly DeclaredOutput[],
  workDir: string,
  quarantineDir: string,
): Promise<VerificationProblem[]> {
  const problems: VerificationProblem[] = [];
  for (const out of outputs) {
    if (!out.sha256) continue;
    const path = resolveOutput(out.path, workDir);
    let actual: string | null = null;
    let error: string | null = null;
    try {
      actual = await fileSha256(path);
    } catch (err) {
      error = (err as Error).message;
    }
    if (actual === out.sha256.toLowerCase()) continue;
    let movedTo: string | null = null;
    if (actual !== null) {
      await mkdir(quarantineDir, { recursive: true });
      movedTo = join(quarantineDir, `${problems.length}-${basename(path)}`);
      await moveFile(path, movedTo);
    }
    problems.push({ path: out.path, expected: out.sha256, actual, error, moved_to: movedTo });
  }
  return problems;
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    // Across file systems rename fails: copy, then remove.
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to);
    await unlink(from);
  }
}

/** One readable sentence per problem, for the stage's error. */
export function describeProblems(problems: readonly VerificationProblem[]): string {
  return problems
    .map((p) =>
      p.actual === null
        ? `${p.path}: cannot be read (${p.error ?? 'missing'})`
        : `${p.path}: sha256 ${p.actual} does not match the declared ${p.expected}; quarantined at ${p.moved_to}`,
    )
    .join('; ');
}
