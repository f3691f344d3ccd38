/**
 * A lean HTTP/1.1 JSON client for load generation: keep-alive sockets and no per-request
 * allocations beyond the body, so the generator costs the system under test and its anchor
 * the same.
 */
import { Agent, request } from 'node:http';

export interface JsonResponse {
  status: number;
  body: string;
}

export class LoadClient {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(baseUrl: string, sockets: number) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  send(method: string, path: string, token: string | null, body?: string): Promise<JsonResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = request(
        { host: this.host, port: this.port, method, path, agent: this.agent, headers },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            data += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
