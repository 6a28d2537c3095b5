import { z } from 'zod';
import { TemplateName } from '../templates/record.js';
import { checkMapping } from './mapping.js';

/** Bounds on triggers, checked where they enter (docs/triggers.md, Limits). */
export const MAX_TRIGGERS = 1000;
/** Params a trigger maps. */
export const MAX_TRIGGER_PARAMS = 100;
/** A trigger definition, as JSON, in UTF-8 bytes. */
export const MAX_TRIGGER_BYTES = 64 * 1024;
/** Largest tolerance of a Stripe timestamp; Standard Webhooks' is fixed at this too. */
export const MAX_TOLERANCE_SECS = 300;

export const TRIGGER_NAME_RULE = '1 to 64 characters, each a letter, a digit, "_" or "-", starting with a letter or a digit';
export const TriggerName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, `a trigger name is ${TRIGGER_NAME_RULE}`);

export const VERIFY_SCHEMES = ['standard_webhooks', 'github', 'stripe', 'hmac', 'none'] as const;
export type VerifyScheme = (typeof VERIFY_SCHEMES)[number];

/** A secret's name in the secrets store (as `${secrets.NAME}` writes it). */
const SecretRef = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must name a secret of the secrets store: 1 to 128 characters, each a letter, a digit, "_", "-" or "."');
/** An HTTP header name (RFC 9110 token characters). */
const HeaderName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'must be an HTTP header name such as "X-Signature"');

export const Verify = z
  .strictObject({
    scheme: z.enum(VERIFY_SCHEMES, { error: `must be one of ${VERIFY_SCHEMES.map((s) => `"${s}"`).join(', ')}` }),
    secret: SecretRef.optional(),
    header: HeaderName.optional(),
    tolerance_secs: z.number().int().min(1).max(MAX_TOLERANCE_SECS).optional(),
  })
  .superRefine((verify, ctx) => {
    if (verify.scheme !== 'none' && verify.secret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: `is required for scheme "${verify.scheme}": the name of the secret (taskstream secret set NAME) its signatures are made with` });
    }
    if (verify.scheme === 'none' && verify.secret !== undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'is not used by scheme "none", which verifies nothing; remove it, or choose a scheme that verifies' });
    if (verify.tolerance_secs !== undefined && verify.scheme !== 'stripe') {
      ctx.addIssue({ code: 'custom', path: ['tolerance_secs'], message: `only applies to scheme "stripe" (Standard Webhooks' is fixed at ${MAX_TOLERANCE_SECS} seconds; github and hmac carry no time)` });
    }
    if (verify.header !== undefined && verify.scheme !== 'hmac' && verify.scheme !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['header'], message: 'only applies to schemes "hmac" (the signature header) and "none" (a delivery id header)' });
    }
  });
export type Verify = z.infer<typeof Verify>;

/** What a `PUT /api/v1/triggers/{name}` sends. */
export const TriggerBody = z
  .strictObject({
    template: TemplateName,
    version: z.number().int().min(1).optional(),
    params: z.record(z.string(), z.unknown()).default({}),
    verify: Verify,
    description: z.string().max(1000).optional(),
  })
  .superRefine((body, ctx) => {
    const names = Object.keys(body.params);
    if (names.length > MAX_TRIGGER_PARAMS) ctx.addIssue({ code: 'custom', path: ['params'], message: `maps ${names.length} params; a trigger maps at most ${MAX_TRIGGER_PARAMS}` });
    for (const problem of checkMapping(body.params)) ctx.addIssue({ code: 'custom', path: ['params', ...problem.at], message: problem.message });
  });
export type TriggerBody = z.infer<typeof TriggerBody>;

/** A trigger as stored: its definition, named, with its times. Holds a secret's name, never its value. */
export const StoredTrigger = z.object({
  name: TriggerName,
  template: TemplateName,
  version: z.number().int().min(1).optional(),
  params: z.record(z.string(), z.unknown()),
  verify: z.object({ scheme: z.enum(VERIFY_SCHEMES), secret: z.string().optional(), header: z.string().optional(), tolerance_secs: z.number().optional() }),
  description: z.string().optional(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
});
export type StoredTrigger = z.infer<typeof StoredTrigger>;
