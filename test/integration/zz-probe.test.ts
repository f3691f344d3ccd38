import { it } from 'vitest';
import { startTestController, ADMIN } from '../helpers/controller.js';
it('probe', async () => {
  const t = await startTestController('sqlite');
  try {
    console.log(t.ctl.app.printRoutes({ commonPrefix: false }));
    console.log(t.ctl.app.printRoutes({ commonPrefix: false, includeMeta: ['config'] }).slice(0, 1500));
    const doc = await t.admin.request<{ paths: Record<string, Record<string, unknown>> }>('GET', '/api/v1/openapi.json');
    for (const [p, ms] of Object.entries(doc.paths)) console.log(p, Object.keys(ms));
    const h = { authorization: `Bearer ${ADMIN}` };
    const u = `${t.ctl.url}/api/v1/jobs`;
    for (const [ct, body] of [['text/plain', 'hi'], ['application/json', '{bad'], ['application/json', ''], ['application/json', JSON.stringify({ command: ['x'], env: { a: 'x'.repeat(1100000) } })]] as const) {
      const r = await fetch(u, { method: 'POST', headers: { ...h, 'content-type': ct }, body });
      console.log(ct, r.status, await r.text());
    }
    const r = await fetch(u, { method: 'POST', headers: h, body: 'x' });
    console.log('no ct', r.status, await r.text());
    const r2 = await fetch(u, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ name: 5, env: 'x', resources: { cpu: -1, gpu: 'a' }, bogus: 1, max_retries_failure: 'x', gang: { id: 'g' } }) });
    console.log(r2.status, await r2.text());
    const r3 = await fetch(`${u}?state=NOPE&limit=0`, { headers: h });
    console.log(r3.status, await r3.text());
  } finally { await t.close(); }
});
