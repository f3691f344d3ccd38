import { type TUnsafe, Type } from '@sinclair/typebox';

/** A string enum as plain JSON Schema `enum`, so validation reports one clear error. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  opts: { description?: string } = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts });
}

export const ErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Array(Type.Object({ field: Type.String(), code: Type.String(), message: Type.String() })),
  }),
});
