/**
 * Maps configurations to points of the unit cube and back, for the model-based optimizers:
 * one coordinate per numeric parameter (on its log scale where `log: true`), a one-hot block
 * per categorical parameter. Inactive parameters sit at the centre of their coordinate.
 */
import {
  choiceKey,
  dependencyOrder,
  type NumericSpec,
  type ParamSpec,
  type Params,
  pruneInactive,
  type Space,
  toUnit,
} from '../space.js';
import { valueFromUnit } from './common.js';

interface Block {
  name: string;
  spec: ParamSpec;
  /** first coordinate */
  offset: number;
  /** coordinates it spans (1 for numeric, k for a categorical with k choices) */
  width: number;
}

export class Encoder {
  readonly blocks: Block[] = [];
  readonly dims: number;
  /** true for coordinates of numeric parameters */
  readonly numeric: boolean[] = [];
  /** Some coordinate takes only some values (int, step, categorical): points need `realize`. */
  readonly discrete: boolean;

  constructor(readonly space: Space) {
    let offset = 0;
    for (const name of dependencyOrder(space)) {
      const spec = space[name] as ParamSpec;
      const width = spec.type === 'categorical' ? spec.choices.length : 1;
      this.blocks.push({ name, spec, offset, width });
      for (let k = 0; k < width; k++) this.numeric.push(spec.type !== 'categorical');
      offset += width;
    }
    this.dims = offset;
    this.discrete = this.blocks.some((b) => b.spec.type !== 'float' || b.spec.step !== undefined);
  }

  encode(params: Params, out = new Float64Array(this.dims)): Float64Array {
    for (const b of this.blocks) {
      const v = params[b.name];
      if (b.spec.type === 'categorical') {
        const key = v === undefined ? null : choiceKey(v);
        b.spec.choices.forEach((c, k) => {
          out[b.offset + k] = key !== null && choiceKey(c) === key ? 1 : 0;
        });
      } else {
        out[b.offset] = typeof v === 'number' && Number.isFinite(v) ? toUnit(b.spec as NumericSpec, v) : 0.5;
      }
    }
    return out;
  }

  /** The configuration nearest to x (rounded, clamped, argmax of one-hot blocks), pruned. */
  decode(x: Float64Array): Params {
    const out: Params = {};
    for (const b of this.blocks) {
      if (b.spec.type === 'categorical') {
        let best = 0;
        for (let k = 1; k < b.width; k++)
          if ((x[b.offset + k] as number) > (x[b.offset + best] as number)) best = k;
        out[b.name] = b.spec.choices[best] as Params[string];
      } else {
        out[b.name] = valueFromUnit(b.spec, x[b.offset] as number);
      }
    }
    return pruneInactive(this.space, out);
  }

  /** x moved onto the nearest legal configuration (and written back into x). */
  realize(x: Float64Array): Params {
    const p = this.decode(x);
    const full: Params = { ...p };
    // Keep inactive coordinates where they were so local search can still move them.
    for (const b of this.blocks) {
      if (b.spec.type !== 'categorical' && full[b.name] === undefined) continue;
      if (b.spec.type === 'categorical' && full[b.name] === undefined) continue;
      if (b.spec.type === 'categorical') {
        const key = choiceKey(full[b.name] as Params[string]);
        b.spec.choices.forEach((c, k) => {
          x[b.offset + k] = choiceKey(c) === key ? 1 : 0;
        });
      } else {
        x[b.offset] = toUnit(b.spec as NumericSpec, full[b.name] as number);
      }
    }
    return p;
  }
}
