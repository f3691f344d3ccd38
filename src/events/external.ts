import type { TSchema } from '@sinclair/typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { fieldErrors } from '../http/validation.js';
import type { FieldError } from '../shared/errors.js';
import { SEED_EVENT_NAMES, STAGE_EVENT_SCHEMAS } from './stage-events.js';
import { validEventType } from './subjects.js';

/**
 * What external producers (POST /api/v1/events, the NATS ingest subjects) may publish: the event
 * types of the catalog that have a payload schema. Internal types (job.*, run.*, …) are written
 * only by runplane itself, so nobody can forge a job's state change.
 */
export const PUBLISHABLE_EVENTS: Readonly<Record<string, TSchema>> = STAGE_EVENT_SCHEMAS;

const ALIASES: Readonly<Record<string, string>> = SEED_EVENT_NAMES;

/** An event an external producer asked to publish, before validation. */
export interface ExternalEvent {
  type: string;
  entity_id?: string | undefined;
  payload: unknown;
  id?: string | undefined;
}

/** A validated external event: canonical type, entity (defaults to the config key) and id, if any. */
export interface ValidEvent {
  type: string;
  entity_id: string;
  payload: Record<string, unknown>;
  id: string | null;
}

export const EVENT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$';
const EVENT_ID = new RegExp(EVENT_ID_PATTERN);

// ajv-formats ships CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, coerceTypes: false, strict: false }));
const compiled = new Map<string, ValidateFunction>();

function validator(type: string): ValidateFunction | null {
  const schema = PUBLISHABLE_EVENTS[type];
  if (!schema) return null;
  let fn = compiled.get(type);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(type, fn);
  }
  return fn;
}

/** The catalog type a name stands for: the type itself or a seed alias (TRAINING_COMPLETED). */
export function resolveEventType(name: string): string {
  return ALIASES[name] ?? name;
}

/**
 * Checks an external event against the catalog. Returns the field errors (type, payload.*, id)
 * or the event with its canonical type.
 */
export function validateExternalEvent(
  e: ExternalEvent,
): { ok: true; event: ValidEvent } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const type = resolveEventType(e.type);
  if (e.entity_id !== undefined && (e.entity_id.length === 0 || e.entity_id.length > 256))
    errors.push({ field: 'entity_id', code: 'INVALID_LENGTH', message: 'must be 1 to 256 characters' });
  if (e.id !== undefined && !EVENT_ID.test(e.id))
    errors.push({ field: 'id', code: 'INVALID_FORMAT', message: `must match ${EVENT_ID_PATTERN}` });
  const check = validEventType(type) ? validator(type) : null;
  if (!check) {
    errors.push({
      field: 'type',
      code: 'UNKNOWN_EVENT_TYPE',
      message: `"${e.type}" is not an event type external producers may publish (see GET /api/v1/events/types)`,
    });
    return { ok: false, errors };
  }
  if (e.payload === null || typeof e.payload !== 'object' || Array.isArray(e.payload)) {
    errors.push({ field: 'payload', code: 'INVALID_TYPE', message: 'must be an object' });
    return { ok: false, errors };
  }
  if (!check(e.payload)) errors.push(...fieldErrors(check.errors ?? [], 'payload'));
  if (errors.length > 0) return { ok: false, errors };
  const payload = e.payload as Record<string, unknown>;
  const entity = e.entity_id ?? (typeof payload.config_key === 'string' ? payload.config_key : type);
  return { ok: true, event: { type, entity_id: entity, payload, id: e.id ?? null } };
}

/** The publishable types with their seed names and payload schemas (GET /api/v1/events/types). */
export function publishableTypes(): Array<{ type: string; seed_name: string | null; schema: TSchema }> {
  const seedName = new Map(Object.entries(ALIASES).map(([name, type]) => [type, name]));
  return Object.entries(PUBLISHABLE_EVENTS).map(([type, schema]) => ({
    type,
    seed_name: seedName.get(type) ?? null,
    schema,
  }));
}
