// Drives a running server with fhir-kit-client and prints one JSON object: what each step saw.
// Usage: node fhir_kit_client.mjs BASE_URL TAG   (TAG: letters making this run's names unique)
// Run by tests/e2e/test_client_libraries.py; a failing step records its HTTP status and body
// under "errors" instead of stopping the others.
import { Client } from 'fhir-kit-client';

const [baseUrl, tag] = process.argv.slice(2);
if (!baseUrl || !tag) {
  console.error('usage: node fhir_kit_client.mjs BASE_URL TAG');
  process.exit(2);
}
const client = new Client({ baseUrl });
const family = `Kit${tag}`;
const seen = {};
const errors = {};

async function step(name, action) {
  try {
    seen[name] = await action();
  } catch (error) {
    errors[name] = error.response
      ? { status: error.response.status, body: error.response.data }
      : { message: String(error) };
  }
}

function headersOf(resource) {
  const { response } = Client.httpFor(resource);
  return {
    status: response.status,
    location: response.headers.get('location'),
    etag: response.headers.get('etag'),
    contentType: response.headers.get('content-type'),
  };
}

const patient = {
  resourceType: 'Patient',
  identifier: [{ system: 'urn:example:kit', value: `${tag}-1` }],
  name: [{ family, given: ['Carmen'] }],
  gender: 'female',
  birthDate: '1970-05-06',
  telecom: [{ system: 'phone', value: '+16175550123' }],
};
let id;
let transactionPatientId;

await step('metadata', async () => {
  const statement = await client.capabilityStatement();
  return { fhirVersion: statement.fhirVersion, format: statement.format };
});

await step('create', async () => {
  const created = await client.create({ resourceType: 'Patient', body: patient });
  id = created.id;
  return { id, versionId: created.meta.versionId, ...headersOf(created) };
});

await step('read', async () => {
  const read = await client.read({ resourceType: 'Patient', id });
  return { id: read.id, family: read.name[0].family, ...headersOf(read) };
});

await step('update', async () => {
  const read = await client.read({ resourceType: 'Patient', id });
  const updated = await client.update({
    resourceType: 'Patient', id, body: { ...read, gender: 'other' },
    options: { headers: { 'If-Match': `W/"${read.meta.versionId}"` } },
  });
  return { versionId: updated.meta.versionId, gender: updated.gender, ...headersOf(updated) };
});

await step('vread', async () => {
  const first = await client.vread({ resourceType: 'Patient', id, version: '1' });
  return { versionId: first.meta.versionId, gender: first.gender };
});

await step('conditionalCreate', async () => {
  const again = await client.create({
    resourceType: 'Patient', body: patient,
    options: { headers: { 'If-None-Exist': `identifier=urn:example:kit|${tag}-1` } },
  });
  return { id: again.id, ...headersOf(again) };
});

async function pages(firstPage) {
  const sizes = [];
  const ids = [];
  let page = firstPage;
  while (page) {
    sizes.push((page.entry || []).length);
    ids.push(...(page.entry || []).map((entry) => entry.resource.id));
    page = await client.nextPage({ bundle: page });
  }
  return { sizes, ids };
}

const pagedFamily = `Kitpaged${tag}`;
await step('searchPages', async () => {
  for (let index = 0; index < 5; index += 1) {
    await client.create({
      resourceType: 'Patient',
      body: { resourceType: 'Patient', name: [{ family: pagedFamily, given: [`G${index}`] }] },
    });
  }
  const first = await client.search({
    resourceType: 'Patient', searchParams: { family: pagedFamily, _count: 2 },
  });
  const walked = await pages(first);
  const second = await client.nextPage({ bundle: first });
  const back = await client.prevPage({ bundle: second });
  return {
    ...walked,
    previousIds: (back.entry || []).map((entry) => entry.resource.id),
  };
});

await step('postSearchPages', async () => {
  const first = await client.search({
    resourceType: 'Patient', searchParams: { family: pagedFamily, _count: 2 },
    options: { postSearch: true },
  });
  return pages(first);
});

await step('transaction', async () => {
  const patientUrl = 'urn:uuid:0e4b3c55-6a5a-4c5e-9f0b-5f3b2b1c0a01';
  const response = await client.transaction({
    body: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: patientUrl,
          resource: { resourceType: 'Patient', name: [{ family: `Kittx${tag}` }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            resourceType: 'Communication', status: 'completed',
            subject: { reference: patientUrl },
            payload: [{ contentString: 'Welcome' }],
          },
          request: { method: 'POST', url: 'Communication' },
        },
      ],
    },
  });
  const [patientEntry, communicationEntry] = response.entry;
  const communicationId = communicationEntry.response.location.split('/')[1];
  const communication = await client.read({ resourceType: 'Communication', id: communicationId });
  transactionPatientId = patientEntry.resource.id;
  return {
    type: response.type,
    statuses: response.entry.map((entry) => entry.response.status),
    patientId: patientEntry.resource.id,
    communicationSubject: communication.subject.reference,
  };
});

await step('batch', async () => {
  const response = await client.batch({
    body: {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Patient/${id}` } },
        { request: { method: 'GET', url: 'Patient/no-such-patient' } },
      ],
    },
  });
  return { type: response.type, statuses: response.entry.map((entry) => entry.response.status) };
});

await step('match', async () => {
  const bundle = await client.operation({
    resourceType: 'Patient', name: '$match',
    input: {
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'resource',
          resource: {
            resourceType: 'Patient', name: [{ family, given: ['Carmen'] }],
            birthDate: '1970-05-06', telecom: patient.telecom,
          },
        },
        { name: 'count', valueInteger: 3 },
      ],
    },
  });
  const best = (bundle.entry || [])[0];
  return {
    type: bundle.type,
    firstId: best && best.resource.id,
    grade: best && best.search.extension
      .find((extension) => extension.url.endsWith('/match-grade')).valueCode,
  };
});

await step('everything', async () => {
  const bundle = await client.operation({
    resourceType: 'Patient', id: transactionPatientId, name: 'everything', method: 'GET',
    input: { _count: 10 },
  });
  const types = (bundle.entry || []).map((entry) => entry.resource.resourceType);
  return { type: bundle.type, types: types.sort() };
});

await step('validate', async () => {
  const outcome = await client.operation({
    resourceType: 'Patient', name: '$validate',
    input: { resourceType: 'Patient', gender: 'robot' },
  });
  return {
    resourceType: outcome.resourceType,
    severities: outcome.issue.map((issue) => issue.severity),
  };
});

await step('history', async () => {
  const bundle = await client.history({ resourceType: 'Patient', id });
  return { type: bundle.type, methods: bundle.entry.map((entry) => entry.request.method) };
});

await step('delete', async () => {
  await client.delete({ resourceType: 'Patient', id });
  try {
    await client.read({ resourceType: 'Patient', id });
    return { readAfterDelete: 200 };
  } catch (error) {
    return { readAfterDelete: error.response.status };
  }
});

console.log(JSON.stringify({ seen, errors }));
