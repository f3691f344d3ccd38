/**
 * The anchor of the heartbeat benchmark: bare Fastify in its own process answering the same
 * POST (JSON body parsed, a small JSON answer) with nothing behind it. Prints "READY <url>".
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/api/v1/runs/:run_id/heartbeat', async (req) => {
  const body = req.body as { step?: number };
  return {
    accepted: true,
    run: { status: 'running', health: 'healthy' },
    next_heartbeat_s: 15,
    step: body.step,
  };
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.stdout.write(`READY http://127.0.0.1:${port}\n`);
const stop = () => {
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
