/**
 * The `systems`, `backends` and `variants` lists as written at a level,
 * checked once at load so that expansion never fails on them: no list mixes
 * plain and +/- entries, globs compile, system names are valid, and named
 * backends exist (the original panics on an unknown one).
 */
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './errors.js';
import type { FieldReader } from './field-reader.js';
import { isGlob, listProblem } from './list-algebra.js';
import { bareEntry, SYSTEM_NAME } from './names.js';

/** The `systems`, `backends` and `variants` lists of a suite or task, checked. */
export function checkSelectionLists(
  r: FieldReader,
  label: string,
  backendNames: ReadonlySet<string>,
  warnings: ConfigWarning[],
): { systems: string[]; backends: string[]; variants: string[] } {
  const systems = checkedList(r, 'systems', label, 'systems');
  for (const entry of systems) {
    if (!SYSTEM_NAME.test(bareEntry(entry))) {
      throw new ConfigError(`${label} refers to invalid system name: ${JSON.stringify(bareEntry(entry))}`, r.where('systems'));
    }
  }
  const backends = checkedList(r, 'backends', label, 'backends');
  for (const entry of backends) {
    const name = bareEntry(entry);
    if (isGlob(name) || backendNames.has(name)) continue;
    const known = [...backendNames].join(', ');
    if (entry.startsWith('-')) {
      warnings.push({ message: `${label} removes unknown backend ${JSON.stringify(name)} (known: ${known})`, where: r.where('backends') });
    } else {
      throw new ConfigError(`${label} refers to unknown backend ${JSON.stringify(name)} (known: ${known})`, r.where('backends'));
    }
  }
  return { systems, backends, variants: checkedList(r, 'variants', label, 'variants') };
}

export function checkedList(r: FieldReader, key: string, label: string, what: string): string[] {
  const list = r.list(key);
  const problem = listProblem(list);
  if (problem) throw new ConfigError(`${label} ${what} list ${problem}`, r.where(key));
  return list;
}
