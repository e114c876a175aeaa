// Owns: `GET /api/v1/agents` on the admin listener — the supervisor's status file, as JSON.
// (To be mounted by the composition root: `routes: [agentStatusRoute(config.dataDir), …]`.)
import type { AdminRoute } from '../admin/admin-server.ts';
import { readStatusFile, statusFilePath } from './agent-status.ts';

export function agentStatusRoute(dataDir: string): AdminRoute {
  return {
    method: 'GET',
    path: '/api/v1/agents',
    handle(_req, res) {
      const status = readStatusFile(statusFilePath(dataDir));
      const body = JSON.stringify(status ?? { updatedAt: null, supervisorPid: null, supervisorRunning: false, agents: [] });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(body);
    },
  };
}
