import { startTestController, eventually } from '/work/main/test/helpers/controller.js';
const iv = setInterval(() => console.log('tick', Date.now() % 100000), 1000);
const t = await startTestController('sqlite', { workers: 1, workerCpu: 4, killGraceMs: '1s' });
const { job_id } = await t.admin.launchJob({ command: ['sh', '-c', 'echo "pid=$$"; exec sleep 60'] });
console.log('launched');
for (let i = 0; i < 20; i++) {
  const j = await t.admin.getJob(job_id);
  const l = await t.admin.jobLogs(job_id);
  console.log(j.state, JSON.stringify(l.lines));
  await new Promise((r) => setTimeout(r, 300));
}
await t.close(); clearInterval(iv);
