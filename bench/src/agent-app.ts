// Child process of agent.bench.ts: the test app (fastify + prom-client, the contracts the agent reads) plus its own
// background traffic, so the benchmark process only generates gate load and measures.
import { startTestApp } from '../../packages/agent/test/app.ts';

const rate = Number(process.argv[2] ?? 50);
const app = await startTestApp({ errorRate: 0.01 });
process.stdout.write(`${app.url}\n`);
let index = 0;
const timer = setInterval(() => {
  for (let burst = 0; burst < rate / 20; burst += 1) {
    index += 1;
    void fetch(`${app.url}/api/orders/${index % 50}`)
      .then((response) => response.arrayBuffer())
      .catch(() => undefined);
  }
}, 50);
process.once('SIGTERM', () => {
  clearInterval(timer);
  void app.close().then(() => process.exit(0));
});
