import type { Where } from './types.js';

/** `file:line:column`, omitting what is unknown. */
export const formatWhere = (where: Where): string =>
  [where.file, where.line, where.column].filter((part) => part !== undefined).join(':');

/** For a value written at an anchor and used through an alias: where the alias is. */
const viaNote = (where: Where | undefined): string =>
  where?.via ? ` (reached through ${where.via.written} at ${where.file}:${where.via.line}:${where.via.column})` : '';

/**
 * A problem in the user's configuration. The message is one line that names
 * the file and line, says what is wrong and, where it helps, how to fix it.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly detail: string,
    readonly where?: Where,
    options?: ErrorOptions,
  ) {
    super(where ? `${formatWhere(where)}: ${detail}${viaNote(where)}` : detail, options);
  }
}

/** A warning about the configuration (an unknown key, say); never stops a run. */
export interface ConfigWarning {
  readonly message: string;
  readonly where: Where;
}

export const formatWarning = (w: ConfigWarning): string => `${formatWhere(w.where)}: ${w.message}${viaNote(w.where)}`;
