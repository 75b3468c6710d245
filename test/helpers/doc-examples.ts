/**
 * Worked examples in docs/*.md, run as tests. An example is a `### Example:`
 * section holding ```yaml file=PATH blocks (the project) and ```console
 * blocks of `$ spread ...` commands followed by their expected output.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './fixture.js';

export interface DocExample {
  readonly title: string;
  readonly files: Record<string, string>;
  readonly commands: { readonly args: string[]; readonly output: string }[];
}

export function docExamples(doc: string): DocExample[] {
  const text = readFileSync(join(REPO_ROOT, 'docs', doc), 'utf8');
  const examples: DocExample[] = [];
  let current: DocExample | undefined;
  const blocks = /^(#{2,3} .*)$|^```(\S*)(?: file=(\S+))?\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(blocks)) {
    if (m[1] !== undefined) {
      current = m[1].startsWith('### Example:') ? { title: m[1].slice(4), files: {}, commands: [] } : undefined;
      if (current) examples.push(current);
      continue;
    }
    if (!current) continue;
    if (m[3]) current.files[m[3]] = m[4]!;
    else if (m[2] === 'console') {
      for (const part of m[4]!.split(/^\$ /m).slice(1)) {
        const [line, ...out] = part.split('\n');
        current.commands.push({ args: line!.trim().split(/\s+/).slice(1), output: out.join('\n') });
      }
    }
  }
  return examples;
}
