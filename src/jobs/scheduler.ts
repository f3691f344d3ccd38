/**
 * Jobs slice — placement decisions for one scheduling pass. Pure: no I/O, no clock, no randomness.
 *
 * First-fit, as the controller spec says: pending jobs in FIFO order (by `seq`), each to the first
 * healthy worker (in the given order) with enough free capacity left in this pass. A job that fits
 * nowhere is skipped and never blocks the jobs behind it. Gangs are placed all-or-nothing at the FIFO
 * position of their earliest member.
 *
 * Speed: a pass over 100k jobs x 1k workers must stay well under a second, so "first worker that fits"
 * is answered by a max segment tree over the workers (O(log W) per job instead of O(W)), and requests
 * already known to fail are rejected in O(1) (capacity only shrinks during a pass).
 */
import type { Resources } from './model.js';

export interface PendingJob {
  id: string;
  /** Submission order; lower = earlier (FIFO). */
  seq: number;
  resources: Resources;
  /** Gang membership: the `required` pending members of gang `id` must ALL be placed in this pass, or none. */
  gang: { id: string; required: number } | null;
}

export interface WorkerSlot {
  id: string;
  healthy: boolean;
  device_type: string | null;
  /** Capacity not in use right now. */
  free: { cpu: number; memory_mb: number; gpu: number };
}

export interface Placement {
  job_id: string;
  worker_id: string;
}

export interface PassResult {
  placements: Placement[];
  /** Number of jobs considered but not placed. */
  skipped: number;
}

/** Slack for float cpu sums: 0.1 + 0.2 is 0.30000000000000004, which must still fit in 0.3. */
const CPU_EPSILON = 1e-9;

export function decidePlacements(jobs: readonly PendingJob[], workers: readonly WorkerSlot[]): PassResult {
  const order = fifoOrder(jobs);
  const gangs = groupGangs(order);
  const capacity = new Capacity(workers);
  const placements: Placement[] = [];

  for (const job of order) {
    if (job.gang === null) {
      const slot = capacity.findFirst(job.resources);
      if (slot >= 0) {
        capacity.take(slot, job.resources);
        placements.push({ job_id: job.id, worker_id: capacity.workerId(slot) });
      }
      continue;
    }
    const members = gangs.get(job.gang.id);
    // A gang is considered once, at the FIFO position of its earliest member.
    if (members !== undefined && members[0] === job) placeGang(members, capacity, placements);
  }

  return { placements, skipped: jobs.length - placements.length };
}

/** Jobs sorted by seq (stable, on a copy); a repeated id keeps only its earliest entry so no job is placed twice. */
function fifoOrder(jobs: readonly PendingJob[]): PendingJob[] {
  const sorted = [...jobs].sort((a, b) => a.seq - b.seq);
  const seen = new Set<string>();
  const order: PendingJob[] = [];
  for (const job of sorted) {
    if (seen.has(job.id)) continue;
    seen.add(job.id);
    order.push(job);
  }
  return order;
}

/** Gang id -> its pending members in FIFO order. */
function groupGangs(order: readonly PendingJob[]): Map<string, PendingJob[]> {
  const gangs = new Map<string, PendingJob[]>();
  for (const job of order) {
    if (job.gang === null) continue;
    const members = gangs.get(job.gang.id);
    if (members === undefined) gangs.set(job.gang.id, [job]);
    else members.push(job);
  }
  return gangs;
}

/**
 * Places the first `required` members (by seq) first-fit on a tentative copy of capacity; commits them
 * all if every one fits, otherwise rolls back so the capacity stays free for the jobs behind the gang.
 * `required` is read from the earliest member. Members beyond `required` are not placed this pass.
 */
function placeGang(members: readonly PendingJob[], capacity: Capacity, placements: Placement[]): void {
  const required = members[0]?.gang?.required ?? 0;
  // Fewer pending members than required: the gang is not eligible yet.
  if (members.length < required) return;

  const tentative: Placement[] = [];
  capacity.begin();
  for (const job of members.slice(0, required)) {
    const slot = capacity.findFirst(job.resources);
    if (slot < 0) {
      capacity.rollback();
      return;
    }
    capacity.take(slot, job.resources);
    tentative.push({ job_id: job.id, worker_id: capacity.workerId(slot) });
  }
  capacity.commit();
  // A loop, not push(...tentative): spreading a huge gang would overflow the call stack.
  for (const p of tentative) placements.push(p);
}

/** A NaN free amount would poison Math.max in the tree (hiding every worker); treat it as nothing free. */
function sane(x: number): number {
  return Number.isNaN(x) ? Number.NEGATIVE_INFINITY : x;
}

/**
 * Free capacity of the healthy workers ("slots", in input order), indexed for first-fit queries:
 * one tree over all slots (for jobs with no device type) and one per device type.
 */
class Capacity {
  private readonly ids: string[] = [];
  private readonly cpu: number[] = [];
  private readonly mem: number[] = [];
  private readonly gpu: number[] = [];
  /** Per slot: its device tree and its position there (null / -1 when the worker has no device type). */
  private readonly deviceTree: (MaxTree | null)[] = [];
  private readonly devicePos: number[] = [];
  private readonly all: MaxTree;
  private readonly byDevice = new Map<string, MaxTree>();
  /** Old values of slots changed since begin(), for rollback; null when not tentative. */
  private undo: { slot: number; cpu: number; mem: number; gpu: number }[] | null = null;

  constructor(workers: readonly WorkerSlot[]) {
    const deviceSlots = new Map<string, number[]>();
    for (const w of workers) {
      // Unhealthy workers get nothing, so they are simply not indexed.
      if (!w.healthy) continue;
      const slot = this.ids.length;
      this.ids.push(w.id);
      this.cpu.push(sane(w.free.cpu));
      this.mem.push(sane(w.free.memory_mb));
      this.gpu.push(sane(w.free.gpu));
      this.deviceTree.push(null);
      this.devicePos.push(-1);
      if (w.device_type !== null) {
        const list = deviceSlots.get(w.device_type);
        if (list === undefined) deviceSlots.set(w.device_type, [slot]);
        else list.push(slot);
      }
    }
    this.all = new MaxTree(
      this.ids.map((_, slot) => slot),
      this.cpu,
      this.mem,
      this.gpu,
    );
    for (const [device, slots] of deviceSlots) {
      const tree = new MaxTree(slots, this.cpu, this.mem, this.gpu);
      this.byDevice.set(device, tree);
      slots.forEach((slot, pos) => {
        this.deviceTree[slot] = tree;
        this.devicePos[slot] = pos;
      });
    }
  }

  workerId(slot: number): string {
    return this.ids[slot]!;
  }

  /** First slot (in worker order) where `r` fits, or -1. */
  findFirst(r: Resources): number {
    // A failure over all workers also rules out every device-restricted subset of them.
    if (this.all.knownToFail(r.cpu, r.memory_mb, r.gpu)) return -1;
    const tree = r.device_type === null ? this.all : this.byDevice.get(r.device_type);
    if (tree === undefined) return -1;
    const slot = tree.findFirst(r.cpu, r.memory_mb, r.gpu);
    // Only record failures on committed capacity: a failure seen during a gang's tentative placement
    // may not hold after its rollback gives the capacity back.
    if (slot < 0 && this.undo === null) tree.recordFailure(r.cpu, r.memory_mb, r.gpu);
    return slot;
  }

  take(slot: number, r: Resources): void {
    this.undo?.push({ slot, cpu: this.cpu[slot]!, mem: this.mem[slot]!, gpu: this.gpu[slot]! });
    this.set(slot, this.cpu[slot]! - r.cpu, this.mem[slot]! - r.memory_mb, this.gpu[slot]! - r.gpu);
  }

  begin(): void {
    this.undo = [];
  }

  commit(): void {
    this.undo = null;
  }

  /** Restores the exact old values (not old - x + x, which can drift by an ulp for floats). */
  rollback(): void {
    const undo = this.undo ?? [];
    for (let i = undo.length - 1; i >= 0; i--) {
      const u = undo[i]!;
      this.set(u.slot, u.cpu, u.mem, u.gpu);
    }
    this.undo = null;
  }

  private set(slot: number, cpu: number, mem: number, gpu: number): void {
    this.cpu[slot] = cpu;
    this.mem[slot] = mem;
    this.gpu[slot] = gpu;
    this.all.update(slot, cpu, mem, gpu);
    this.deviceTree[slot]?.update(this.devicePos[slot]!, cpu, mem, gpu);
  }
}

/** How many failed requests each tree remembers; job shapes repeat, so a few cover most of them. */
const MAX_FAILURES = 16;

/**
 * Segment tree over a list of slots holding, per node, the max free cpu / memory / gpu below it.
 * first-fit = leftmost leaf that fits; subtrees whose maxima cannot fit are pruned.
 */
class MaxTree {
  private readonly size: number;
  private readonly slots: number[];
  private readonly cpu: Float64Array;
  private readonly mem: Float64Array;
  private readonly gpu: Float64Array;
  /** Requests that found no fit. Capacity only shrinks (outside gang rollbacks, which never record
   *  failures), so any request at least as large as one of these fails too. */
  private failures: { cpu: number; mem: number; gpu: number }[] = [];

  constructor(slots: number[], cpu: readonly number[], mem: readonly number[], gpu: readonly number[]) {
    let size = 1;
    while (size < slots.length) size *= 2;
    this.size = size;
    this.slots = slots;
    // Empty leaves hold -Infinity so they never fit.
    this.cpu = new Float64Array(2 * size).fill(Number.NEGATIVE_INFINITY);
    this.mem = new Float64Array(2 * size).fill(Number.NEGATIVE_INFINITY);
    this.gpu = new Float64Array(2 * size).fill(Number.NEGATIVE_INFINITY);
    slots.forEach((slot, pos) => {
      this.cpu[size + pos] = cpu[slot]!;
      this.mem[size + pos] = mem[slot]!;
      this.gpu[size + pos] = gpu[slot]!;
    });
    for (let n = size - 1; n >= 1; n--) this.pull(n);
  }

  update(pos: number, cpu: number, mem: number, gpu: number): void {
    let n = this.size + pos;
    this.cpu[n] = cpu;
    this.mem[n] = mem;
    this.gpu[n] = gpu;
    for (n >>= 1; n >= 1; n >>= 1) this.pull(n);
  }

  /** Slot of the leftmost leaf where the request fits, or -1. */
  findFirst(cpu: number, mem: number, gpu: number): number {
    const pos = this.descend(1, cpu, mem, gpu);
    return pos < 0 ? -1 : this.slots[pos]!;
  }

  knownToFail(cpu: number, mem: number, gpu: number): boolean {
    for (const f of this.failures) if (cpu >= f.cpu && mem >= f.mem && gpu >= f.gpu) return true;
    return false;
  }

  recordFailure(cpu: number, mem: number, gpu: number): void {
    // Keep only the smallest failures: one that is at least as large as the new one adds nothing.
    this.failures = this.failures.filter((f) => !(f.cpu >= cpu && f.mem >= mem && f.gpu >= gpu));
    if (this.failures.length >= MAX_FAILURES) this.failures.shift();
    this.failures.push({ cpu, mem, gpu });
  }

  private descend(n: number, cpu: number, mem: number, gpu: number): number {
    // Written as a negated fit so a NaN request prunes everything.
    if (!(cpu <= this.cpu[n]! + CPU_EPSILON && mem <= this.mem[n]! && gpu <= this.gpu[n]!)) return -1;
    if (n >= this.size) return n - this.size;
    const left = this.descend(2 * n, cpu, mem, gpu);
    return left >= 0 ? left : this.descend(2 * n + 1, cpu, mem, gpu);
  }

  private pull(n: number): void {
    this.cpu[n] = Math.max(this.cpu[2 * n]!, this.cpu[2 * n + 1]!);
    this.mem[n] = Math.max(this.mem[2 * n]!, this.mem[2 * n + 1]!);
    this.gpu[n] = Math.max(this.gpu[2 * n]!, this.gpu[2 * n + 1]!);
  }
}
