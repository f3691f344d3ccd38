import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldError } from '../shared/errors.js';

// ajv-formats ships CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerce: boolean): Ajv {
  // Bodies are validated strictly (no coercion: "5" is not a number); query strings and
  // path parameters are text by nature and are coerced. Unknown fields are rejected, and every
  // error is reported, not just the first.
  const ajv = new Ajv({
    allErrors: true,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

const bodyAjv = makeAjv(false);
const textAjv = makeAjv(true);

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? bodyAjv : textAjv;
  return ajv.compile(schema) as ReturnType<FastifySchemaCompiler<object>>;
};

const CODES: Record<string, string> = {
  required: 'REQUIRED',
  type: 'INVALID_TYPE',
  minimum: 'OUT_OF_RANGE',
  maximum: 'OUT_OF_RANGE',
  exclusiveMinimum: 'OUT_OF_RANGE',
  exclusiveMaximum: 'OUT_OF_RANGE',
  minLength: 'INVALID_LENGTH',
  maxLength: 'INVALID_LENGTH',
  minItems: 'INVALID_LENGTH',
  maxItems: 'INVALID_LENGTH',
  minProperties: 'INVALID_LENGTH',
  pattern: 'INVALID_FORMAT',
  format: 'INVALID_FORMAT',
  enum: 'INVALID_VALUE',
  const: 'INVALID_VALUE',
  anyOf: 'INVALID_VALUE',
  oneOf: 'INVALID_VALUE',
  additionalProperties: 'UNKNOWN_FIELD',
  multipleOf: 'INVALID_VALUE',
};

/** Turns ajv errors into field errors: one per field, named by a dotted path. */
export function fieldErrors(errors: readonly ErrorObject[], part: string | undefined): FieldError[] {
  const prefix = part === 'body' || part === undefined ? '' : `${part === 'querystring' ? 'query' : part}.`;
  const out = new Map<string, FieldError>();
  for (const e of errors) {
    let path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required')
      path = path ? `${path}.${String(params.missingProperty)}` : String(params.missingProperty);
    if (e.keyword === 'additionalProperties') {
      const extra = String(params.additionalProperty);
      path = path ? `${path}.${extra}` : extra;
    }
    const field = `${prefix}${path}` || (prefix ? prefix.slice(0, -1) : 'body');
    const code = CODES[e.keyword] ?? 'INVALID';
    const message =
      e.keyword === 'additionalProperties'
        ? 'is not a known field'
        : e.keyword === 'enum'
          ? `must be one of ${(params.allowedValues as unknown[]).join(', ')}`
          : (e.message ?? 'is invalid');
    // A union reports one error per branch and then anyOf; keep the most specific single line.
    const existing = out.get(field);
    if (!existing || e.keyword === 'anyOf') out.set(field, { field, code, message });
  }
  return [...out.values()];
}
