// Webhook deliveries of a live trialsd (see run.sh), verified by the
// Standard Webhooks npm package, as a Node receiver would verify them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { EdgeImpulseApi } from 'edge-impulse-api';

const endpoint = process.env.TRIALSD_URL;
const adminKey = process.env.TRIALSD_ADMIN_KEY;
assert.ok(endpoint && adminKey, 'run through compat/run.sh');
const stamp = Date.now().toString(36);

// admin calls the endpoint routes, which the published client predates.
async function admin(method, path, body) {
    const res = await fetch(endpoint + '/v1/api/admin/webhook-endpoints' + path, {
        method, headers: { 'x-api-key': adminKey, 'content-type': 'application/json' },
        body: body && JSON.stringify(body),
    });
    const json = await res.json();
    assert.equal(res.status, 200, JSON.stringify(json));
    return json;
}

// receiver is a webhook endpoint on loopback that keeps what it receives.
async function receiver() {
    const got = [];
    const server = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', c => { body += c; });
        req.on('end', () => { got.push({ headers: req.headers, body }); res.writeHead(204).end(); });
    });
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${server.address().port}/hooks`, got, close: () => server.close() };
}

// delivered waits, within a deadline, for the delivery of type about trialId.
async function delivered(rcv, type, trialId) {
    for (const deadline = Date.now() + 15000; Date.now() < deadline; await delay(50)) {
        const d = rcv.got.find(d => {
            const p = JSON.parse(d.body);
            return p.type === type && p.data.trial.id === trialId;
        });
        if (d) {
            return d;
        }
    }
    throw new Error(`no ${type} delivery for trial ${trialId}`);
}

test('deliveries verify with the standardwebhooks package, before and after a rotation', async () => {
    const rcv = await receiver();
    try {
        const made = await admin('POST', '', { url: rcv.url, description: 'compat', eventTypes: ['trial.created', 'trial.extended'] });
        const id = made.endpoint.id;
        const secret = made.secret;
        assert.match(secret, /^whsec_/);

        const anon = new EdgeImpulseApi({ endpoint });
        const signup = await anon.user.createEnterpriseTrialUser({
            name: 'Wilma Flintstone', username: `wilma-${stamp}`, email: `wilma-${stamp}@cave-${stamp}.example`,
            privacyPolicy: true, turnstileResponse: 'token',
        });
        const created = await delivered(rcv, 'trial.created', signup.id);
        const payload = new Webhook(secret).verify(created.body, created.headers);
        assert.equal(payload.data.event.kind, 'trial.created');
        assert.equal(payload.data.sequence, 1);
        assert.equal(created.headers['webhook-id'], `evt_${payload.data.event.id}`);
        assert.throws(() => new Webhook(secret).verify(created.body.replace('trial.created', 'trial.expired'), created.headers));
        const other = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
        assert.throws(() => new Webhook(other).verify(created.body, created.headers));

        const rotated = (await admin('POST', `/${id}/rotate-secret`)).secret;
        const api = new EdgeImpulseApi({ endpoint });
        await api.authenticate({ method: 'apiKey', apiKey: adminKey });
        await api.admin.adminUpdateTrial(signup.id, { expirationDate: new Date(Date.now() + 60 * 24 * 3600 * 1000) });
        const extended = await delivered(rcv, 'trial.extended', signup.id);
        for (const s of [secret, rotated]) {
            const p = new Webhook(s).verify(extended.body, extended.headers);
            assert.ok(p.data.sequence > payload.data.sequence);
        }

        const log = await admin('GET', `/${id}/attempts`);
        assert.ok(log.attempts.some(a => a.eventId === created.headers['webhook-id'] && a.statusCode === 204));
        await admin('DELETE', `/${id}`);
    } finally {
        rcv.close();
    }
});
