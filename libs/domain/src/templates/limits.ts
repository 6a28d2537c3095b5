/** Bounds on templates and their runs, checked where they enter (docs/triggers.md, Limits). */

/** A template (flow, params_schema and description, as JSON), in UTF-8 bytes. */
export const MAX_TEMPLATE_BYTES = 256 * 1024;
/** The params of one run, as JSON, in UTF-8 bytes. */
export const MAX_RUN_PARAMS_BYTES = 64 * 1024;
/** Versions kept per template: a new version beyond them removes the oldest. */
export const MAX_TEMPLATE_VERSIONS = 100;
/** Templates in one installation. */
export const MAX_TEMPLATES = 1000;
/** A template's description, in characters. */
export const MAX_TEMPLATE_DESCRIPTION = 1000;
/** Problems listed for one run's params (the rest are counted). */
export const MAX_PARAM_PROBLEMS = 50;
