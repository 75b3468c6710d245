/**
 * podman: as docker (see container-engine.ts), through the daemonless
 * `podman` client. Hosts that need extra flags (a runtime, ulimits) give
 * them as `run-options` in spread.yaml; none are hard-coded here.
 */
import { containerEngineBackend } from './container-engine.js';

export const podmanBackend = containerEngineBackend({
  type: 'podman',
  server: 'Podman service',
  // podman would first wait 10 s for sshd (PID 1) to obey SIGTERM, which it never does.
  removeArgs: ['rm', '-f', '--time', '0'],
});
