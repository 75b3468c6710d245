/** docker backend against the real Docker daemon (skipped off CI when there is none). */
import { containerEngineSuite } from './container-suite.js';

containerEngineSuite({
  type: 'docker',
  runOptions: [],
  deadEngine: 'env DOCKER_HOST=unix:///nonexistent/docker.sock docker',
  deadMessage: 'docker: cannot reach the Docker daemon at unix:///nonexistent/docker.sock; is it running?',
});
