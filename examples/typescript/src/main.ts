// A client of trialsd's API, as an integration would write one: it signs a
// user up, logs in as them, starts their enterprise trial, and receives and
// verifies the trial.created webhook that follows, with the Standard
// Webhooks library (npm standardwebhooks) rather than code of its own.
//
// It receives the webhook itself, on a loopback port, through an endpoint
// it adds with an admin's API key and removes when done, so it needs a
// daemon that allows private receivers (webhooks.allow_private_networks,
// which config.dev.yaml sets). docs/webhooks.md runs it:
//
//   TRIALSD_URL=http://127.0.0.1:4800 TRIALSD_ADMIN_KEY=ei_… npm start
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

const base = process.env.TRIALSD_URL;
const adminKey = process.env.TRIALSD_ADMIN_KEY;

// The part of a webhook this example reads.
interface Delivery {
  type: string;
  data: { trial: { id: number; state: string }; sequence: number };
}

// call sends body as JSON and returns the answer; one that is not 2xx or
// says "success": false throws, with the API's own message.
async function call<T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let answer: { success?: boolean } | undefined;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  if (!res.ok || !answer?.success) {
    throw new Error(`${method} ${path}: ${res.status}: ${text}`);
  }
  return answer as T;
}

// receive serves webhooks on server, verifying each one with secret
// (whsec_…) on the raw body as received (parsed and serialised again, it
// would no longer match its signature); a bad signature gets 400, so trialsd
// would retry it. It returns a wait for the first verified delivery that
// matches, whether it came before the wait or comes after.
function receive(server: Server, secret: string): (wanted: (d: Delivery) => boolean) => Promise<[string, Delivery]> {
  const wh = new Webhook(secret);
  const seen: Array<[string, Delivery]> = [];
  let arrived = () => {};
  server.on('request', (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', chunk => { body += chunk; });
    req.on('end', () => {
      let d: Delivery;
      try {
        d = wh.verify(body, req.headers as Record<string, string>) as Delivery;
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(204).end();
      seen.push([String(req.headers['webhook-id']), d]);
      arrived();
    });
  });
  return async wanted => {
    for (;;) {
      const hit = seen.find(([, d]) => wanted(d));
      if (hit) return hit;
      await new Promise<void>(resolve => { arrived = resolve; });
    }
  };
}

async function listen(): Promise<Server> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function main(): Promise<void> {
  if (!base || !adminKey) {
    throw new Error('set TRIALSD_URL (http://127.0.0.1:4800) and TRIALSD_ADMIN_KEY (an admin\'s API key)');
  }
  const admin = { 'x-api-key': adminKey };
  const server = await listen();
  const { port } = server.address() as AddressInfo;
  const ep = await call<{ endpoint: { id: number }; secret: string }>('POST', '/v1/api/admin/webhook-endpoints', admin, {
    url: `http://127.0.0.1:${port}/hooks`, description: 'examples/typescript', eventTypes: ['trial.created'],
  });
  const delivered = receive(server, ep.secret);
  try {
    // Sign up, log in and start the trial, as the Edge Impulse client's
    // createProTierUser, getJWT and startEnterpriseTrial do.
    const username = `ts-example-${randomBytes(4).toString('hex')}`;
    const password = 'correct horse battery staple';
    const user = await call<{ id: number }>('POST', '/v1/api-create-pro-user', {}, {
      name: 'TypeScript Example', username, email: `${username}@example.com`, password, privacyPolicy: true,
    });
    console.log(`signed up user ${user.id} (${username})`);
    const { token } = await call<{ token: string }>('POST', '/v1/api-login', {}, { username, password });
    const trial = await call<{ id: number }>('POST', '/v1/api/user/trial', { 'x-jwt-token': token }, {
      organizationName: 'TypeScript Example\'s team',
    });
    console.log(`started trial ${trial.id}`);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('no verified trial.created webhook arrived in time')), 30_000).unref());
    const created = delivered(d => d.type === 'trial.created' && d.data.trial.id === trial.id);
    const [id, d] = await Promise.race([created, timeout]);
    console.log(`verified webhook ${id}: ${d.type} of trial ${d.data.trial.id} (${d.data.trial.state}), sequence ${d.data.sequence}`);
  } finally {
    await call('DELETE', `/v1/api/admin/webhook-endpoints/${ep.endpoint.id}`, admin).catch(() => {});
    server.close();
  }
}

main().catch(err => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
