/**
 * podman backend against the real podman (skipped off CI when absent). The
 * runtime and ulimit flags are what this sandbox needs (docs/dev/engines.md),
 * given the way users give them: as run-options.
 */
import { containerEngineSuite } from './container-suite.js';

containerEngineSuite({
  type: 'podman',
  runOptions: ['--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'],
  deadEngine: 'podman --remote --url unix:///nonexistent/podman.sock',
  deadMessage: 'podman: cannot reach the Podman service at unix:///nonexistent/podman.sock; is it running?',
});
