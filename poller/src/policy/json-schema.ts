// The JSON Schema of policy files, generated from the zod schema (the one
// source of truth) and published as docs/policy.schema.json, so editors can
// validate and complete YAML policies. Checks that need more than a schema
// (addresses, expressions, engine limits) are `loadfeed policy check`'s.
import { z } from 'zod';
import { policySchema } from './schema.js';

export const POLICY_SCHEMA_ID = 'https://loadfeed.invalid/schemas/policy-v1.json';

export function policyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(policySchema, { io: 'input', unrepresentable: 'any' }),
    $id: POLICY_SCHEMA_ID,
    title: 'loadfeed weight-tuning policy (apiVersion loadfeed/v1)',
  };
}
