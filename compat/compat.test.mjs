// Every trial and sign-up operation of the Edge Impulse API client, run
// against a live trialsd (see run.sh). The client is the published npm
// package, unmodified: it throws on a non-2xx status or success: false, and
// turns dates with 1-3 fractional digits into Date objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { EdgeImpulseApi } from 'edge-impulse-api';

const endpoint = process.env.TRIALSD_URL;
const adminKey = process.env.TRIALSD_ADMIN_KEY;
const logFile = process.env.TRIALSD_LOG_FILE;
assert.ok(endpoint && adminKey && logFile, 'run through compat/run.sh');

const day = 24 * 3600 * 1000;
const stamp = Date.now().toString(36);

async function client(auth) {
    const api = new EdgeImpulseApi({ endpoint });
    if (auth) {
        await api.authenticate(auth);
    }
    return api;
}

// The daemon's development e-mail sender logs each e-mail (the address
// masked, the body at debug level); read the newest activation code sent to
// `to`, as a developer would.
async function activationCode(to) {
    const masked = to[0] + '***' + to.slice(to.indexOf('@'));
    for (let i = 0; i < 100; i++) {
        const log = await readFile(logFile, 'utf8');
        const codes = log.split('\n').filter(l => l.includes(masked) && l.includes('activation code is'))
            .map(l => /activation code is (\d{6})/.exec(l)?.[1]).filter(Boolean);
        if (codes.length) {
            return codes[codes.length - 1];
        }
        await delay(100); // the e-mail is delivered by a job, moments later
    }
    throw new Error(`no activation e-mail to ${to} in ${logFile}`);
}

test('enterprise trial sign-up, login and the signed-in operations', async () => {
    const anon = await client();
    const username = `fred-${stamp}`;
    const email = `fred-${stamp}@bedrock.example`;
    const signup = await anon.user.createEnterpriseTrialUser({
        name: 'Fred Flintstone', username, email, password: 'yabba-dabba-doo', privacyPolicy: true,
        turnstileResponse: 'token', organizationName: 'Slate Rock', userHasMLModelsInProduction: 'no',
        companyName: 'Slate Rock and Gravel', utmParams: [{ utm_source: 'compat' }],
        redirectUrlQueryParams: 'utm_source=compat',
    });
    assert.equal(signup.success, true);
    assert.ok(signup.id > 0 && signup.userId > 0);
    assert.match(signup.redirectUrl, /\/organization\/\d+\?utm_source=compat$/);

    const login = await anon.login.login({ username, password: 'yabba-dabba-doo' });
    assert.equal(login.success, true);
    const fred = await client({ method: 'jwtToken', jwtToken: login.token });

    const list = await fred.user.listEnterpriseTrialsUser(signup.userId);
    assert.equal(list.trials.length, 1);
    const trial = list.trials[0];
    assert.equal(trial.id, signup.id);
    assert.ok(trial.created instanceof Date && trial.expirationDate instanceof Date);
    assert.equal(Math.round((trial.expirationDate - trial.created) / day), 14);
    assert.equal(trial.expiredDate, null);

    // An address gets one trial; the client throws on the 409, with the
    // refusal's words as its message.
    await assert.rejects(fred.user.startEnterpriseTrial({ organizationName: 'Again' }), /already had an enterprise trial/);
    // So does a colleague's sign-up while the company's trial is active,
    // and the pre-flight says so first, without naming anyone.
    const colleague = `betty-${stamp}@bedrock.example`;
    const pre = await (await fetch(`${endpoint}/v1/api/trial-eligibility?email=${encodeURIComponent(colleague)}`)).json();
    assert.deepEqual(pre, { success: true, eligible: false, reason: 'not_eligible', message: 'This address cannot start a trial; contact sales to continue.' });
    await assert.rejects(anon.user.createEnterpriseTrialUser({
        name: 'Betty Rubble', username: `betty-${stamp}`, email: colleague, privacyPolicy: true, turnstileResponse: 'token',
    }), /Your company already has an active trial; ask its admin to add you, or contact sales\./);

    const ext = await fred.organizations.requestEnterpriseTrialExtension(trial.organizationId, {
        reason: 'The pilot needs two more weeks', trialId: trial.id,
    });
    assert.equal(ext.success, true);

    // Wrong credentials are an exception too.
    await assert.rejects(anon.login.login({ username, password: 'wrong' }), /Invalid username or password/);
});

test('professional sign-up and e-mail activation', async () => {
    const anon = await client();
    const username = `wilma-${stamp}`;
    const email = `wilma-${stamp}@gmail.com`;
    const pro = await anon.user.createProTierUser({
        name: 'Wilma Flintstone', username, email, password: 'yabba-dabba-doo', privacyPolicy: true,
        turnstileResponse: 'token', projectName: 'Keyword spotting',
    });
    assert.equal(pro.success, true);
    assert.ok(pro.id > 0);
    assert.match(pro.redirectUrl, /\/studio\/\d+$/);

    const login = await anon.login.login({ username: email, password: 'yabba-dabba-doo' });
    const wilma = await client({ method: 'jwtToken', jwtToken: login.token });
    const first = await activationCode(email);
    await wilma.user.requestActivationCodeCurrentUser();
    let code = await activationCode(email);
    for (let i = 0; code === first && i < 50; i++) {
        await delay(100);
        code = await activationCode(email);
    }
    await assert.rejects(wilma.user.activateCurrentUser({ code: code === '000000' ? '111111' : '000000' }), /wrong or has expired/);
    const ok = await wilma.user.activateCurrentUser({ code });
    assert.equal(ok.success, true);
});

test('admin operations', async () => {
    const admin = await client({ method: 'apiKey', apiKey: adminKey });
    const anon = await client();
    const barney = `barney-${stamp}@quarry-${stamp}.example`;
    const signup = await anon.user.createEnterpriseTrialUser({
        name: 'Barney Rubble', username: `barney-${stamp}`, email: barney,
        privacyPolicy: true, turnstileResponse: 'token',
    });

    // Barney has had his trial: an admin's second one for him takes a grant.
    await assert.rejects(admin.admin.adminCreateTrial({ userId: signup.userId }), /already had an enterprise trial/);
    const grant = await fetch(`${endpoint}/v1/api/admin/trial-eligibility/grants`, {
        method: 'POST', headers: { 'x-api-key': adminKey, 'content-type': 'application/json' },
        body: JSON.stringify({ email: barney, note: 'sales-led pilot' }),
    });
    assert.equal(grant.status, 200);
    const expirationDate = new Date(Date.now() + 7 * day);
    const created = await admin.admin.adminCreateTrial({ userId: signup.userId, expirationDate, notes: 'compat' });
    assert.equal(created.success, true);

    let got = await admin.admin.adminGetTrial(created.id);
    assert.equal(got.trial.notes, 'compat');
    assert.equal(got.trial.userId, signup.userId);
    assert.equal(got.trial.expirationDate.getTime(), expirationDate.getTime());

    const later = new Date(Date.now() + 30 * day);
    await admin.admin.adminUpdateTrial(created.id, { expirationDate: later, notes: 'extended' });
    got = await admin.admin.adminGetTrial(created.id);
    assert.equal(got.trial.expirationDate.getTime(), later.getTime());
    assert.equal(got.trial.notes, 'extended');

    await admin.admin.adminUpgradeTrial(created.id);
    got = await admin.admin.adminGetTrial(created.id);
    assert.ok(got.trial.upgradedDate instanceof Date);

    await admin.admin.adminDeleteTrial(signup.id);
    got = await admin.admin.adminGetTrial(signup.id);
    assert.ok(got.trial.deletedDate instanceof Date);

    await admin.admin.adminRestoreOrganization(got.trial.organizationId);
    got = await admin.admin.adminGetTrial(signup.id);
    assert.equal(got.trial.deletedDate, null);

    const own = await admin.user.startEnterpriseTrial({ organizationName: 'Admin pilot', notes: 'mine' });
    assert.equal(own.success, true);
    const ownTrial = await admin.admin.adminGetTrial(own.id);
    await admin.admin.adminDeleteOrganization(ownTrial.trial.organizationId, { fullDeletion: true });
    got = await admin.admin.adminGetTrial(own.id);
    assert.ok(got.trial.deletedDate instanceof Date);

    // Non-admins are refused; the client throws.
    const login = await anon.login.login({ username: `barney-${stamp}`, password: 'x' }).catch(e => e);
    assert.ok(login instanceof Error);
    await assert.rejects(anon.admin.adminGetTrial(created.id));
});
