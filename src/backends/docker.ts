/**
 * docker: each machine is a container started from the system's image, with
 * sshd as its first process and root's password set to the run's password.
 * The engine is reached through the `docker` client (DOCKER_HOST and docker
 * contexts apply). Everything shared with podman is in container-engine.ts.
 */
import { containerEngineBackend } from './container-engine.js';

export const dockerBackend = containerEngineBackend({
  type: 'docker',
  server: 'Docker daemon',
  removeArgs: ['rm', '-f'],
});
