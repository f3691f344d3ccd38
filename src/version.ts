/** The runplane version, shown by the CLI and the OpenAPI document. */
export const VERSION = '0.1.0';
