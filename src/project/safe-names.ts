/**
 * Job names as file names that CI artifact uploaders accept (GitHub's
 * upload-artifact refuses `:`, as do Windows file systems): every `:` becomes
 * `__`. No part of a job name (backend, system, suite, task, variant) can
 * contain `:` or a double `_` except a variant, which comes last, so the
 * mapping is one to one: split at the first two `__`, then the task, then
 * the variant. `/` stays a directory separator and `#N` the sample.
 */
export const safeName = (name: string): string => name.replaceAll(':', '__');
