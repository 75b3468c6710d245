/** JUnit text and names, in isolation: what Jenkins does with a classname, what XML can carry. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { junitClassname, junitTimestamp, xmlText } from '../../src/report/junit.js';

/** Jenkins' JUnit plugin: the package is what comes before the last dot of the classname, the class what follows. */
const jenkinsSplit = (classname: string): [string, string] => {
  const i = classname.lastIndexOf('.');
  return i < 0 ? ['(root)', classname] : [classname.slice(0, i), classname.slice(i + 1)];
};

test('classnames split in Jenkins into backend:system and the suite, whatever dots they hold', () => {
  const cases: [string, string, string, [string, string]][] = [
    ['lxd', 'ubuntu-22.04', 'tests/', ['lxd:ubuntu-22.04', 'tests/']],
    ['google', 'ubuntu-16.04-64', 'tests/main/', ['google:ubuntu-16.04-64', 'tests/main/']],
    ['qemu', 'fedora-39.1', 'tests.v2/', ['qemu:fedora-39.1', 'tests_v2/']],
  ];
  for (const [backend, system, suite, expected] of cases) assert.deepEqual(jenkinsSplit(junitClassname(backend, system, suite)), expected);
});

test('text: terminal sequences removed whole, characters XML 1.0 forbids dropped, the rest kept', () => {
  assert.equal(xmlText('\u001b[1;31mFAIL\u001b[0m: x'), 'FAIL: x');
  assert.equal(xmlText('\u001b]0;title\u0007after'), 'after');
  assert.equal(xmlText('a\u0000b\u0008c\u000bd\ufffee'), 'abcde');
  assert.equal(xmlText('lone \ud800 surrogate'), 'lone  surrogate');
  assert.equal(xmlText('tab\tnew\nline\r ok 😀 é'), 'tab\tnew\nline\r ok 😀 é');
});

test('timestamps are UTC in the form Ant and Jenkins read', () => {
  assert.equal(junitTimestamp(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05');
});
