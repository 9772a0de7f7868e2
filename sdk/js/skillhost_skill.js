// Helpers for skillhost skills written in JavaScript (contract skillhost:skill@0.1.0), built with
// componentize-js:
//
//     componentize-js app.js --wit wit/skill@0.1.0 --world-name skill -d http -d fetch-event -o my_skill.wasm
//
// `-d http -d fetch-event` keeps `wasi:http` out of the component: the host refuses a skill that
// could open its own connections. HTTP goes through the host's `http` import instead.
//
// Throwing a value `fail` builds returns that skill error from `invoke`; any other exception
// crashes the invocation, and the host reports it.

import { info as connectionInfo } from 'skillhost:skill/connection@0.1.0';
import { send } from 'skillhost:skill/http@0.1.0';
import { log as hostLog } from 'skillhost:skill/log@0.1.0';

export const CONTRACT_VERSION = '0.1.0';

/** A skill error of `kind` ("invalid-input", "not-found", "denied", "unauthorized", "forbidden",
 * "throttled", "timeout", "internal"), to throw from `invoke`. */
export function fail(kind, message) {
  return { tag: kind, val: message };
}

/** The skill error for an upstream failure the other kinds do not describe, to throw. */
export function upstreamError(status, code, message) {
  return { tag: 'upstream', val: { status, code, message } };
}

/** One parameter: `kind` is "text", "integer", "boolean" or "timestamp"; `default` a JS value. */
export function param(name, kind, description, options = {}) {
  return {
    name,
    description,
    kind,
    required: options.required ?? false,
    defaultValue: options.default === undefined ? undefined : JSON.stringify(options.default),
    allowedValues: options.allowed ?? [],
    minimum: options.minimum === undefined ? undefined : BigInt(options.minimum),
    maximum: options.maximum === undefined ? undefined : BigInt(options.maximum),
  };
}

/** The answer of `describe()`; `version` is the skill's own. Give `columns` for a dataset. */
export function describe(id, version, description, options = {}) {
  return {
    id,
    name: options.name ?? id,
    version,
    description,
    parameters: options.parameters ?? [],
    services: options.services ?? [],
    output: options.columns ? 'dataset' : 'object',
    columns: options.columns ?? [],
    outputDescription: options.outputDescription ?? '',
  };
}

/** The validated input of `invoke`, as an object (defaults applied by the host). */
export function readInput(text) {
  const value = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fail('internal', 'the input is not a JSON object');
  }
  return value;
}

/** Non-secret facts about the bound connection: name, tenant, cloud, api, services. */
export function connection() {
  return connectionInfo();
}

/** The skill error (to throw) for a request the host could not complete. */
export function fetchError(error) {
  switch (error.tag) {
    case 'denied':
      return fail('denied', error.val);
    case 'unauthorized':
      return fail('unauthorized', error.val);
    case 'timeout':
      return fail('timeout', "the invocation's deadline passed while waiting for the API");
    case 'too-large':
      return upstreamError(200, 'ResponseTooLarge',
        `the answer exceeded the host's cap of ${error.val} bytes; ask for smaller pages`);
    default: {
      const why = String(error.val ?? error);
      return why.startsWith('the answer ')
        ? upstreamError(200, 'IncompleteResponse', why)
        : upstreamError(0, 'Unreachable', why);
    }
  }
}

/** The skill error (to throw) for a non-2xx answer of `service`. */
export function statusError(service, status, body) {
  const text = new TextDecoder().decode(body);
  let code = '';
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text);
    code = String(parsed.error.code ?? '');
    message = String(parsed.error.message);
  } catch (_) {
    // Not an OData error body: its start is the message.
  }
  switch (status) {
    case 401:
      return fail('unauthorized', `the ${service} service rejected the token (401): ${message}`);
    case 403:
      return fail('forbidden',
        `the application lacks a permission the ${service} service requires (403): ${message}`);
    case 404:
      return fail('not-found', message);
    case 429:
      return fail('throttled',
        `the ${service} service is still throttling after the host's retries: ${message}`);
    default:
      return upstreamError(status, code, message);
  }
}

/** GETs `pathAndQuery` on `service` and returns the JSON body; throws the matching skill error. */
export function getJson(service, pathAndQuery) {
  let response;
  try {
    response = send({ service, method: 'get', pathAndQuery, headers: [], body: undefined });
  } catch (e) {
    throw fetchError(e.payload ?? e);
  }
  if (response.status < 200 || response.status >= 300) {
    throw statusError(service, response.status, response.body);
  }
  try {
    return JSON.parse(new TextDecoder().decode(response.body));
  } catch (e) {
    throw upstreamError(response.status, 'InvalidJson',
      `the ${service} service answered with a body that is not JSON: ${e}`);
  }
}

/** The pages (each an array of items) of an OData collection: `$top`/`$skip`, or
 * `@odata.nextLink` when the service gives one, until a short page or the last link. */
export function* pages(service, pathAndQuery, top) {
  top = Math.max(1, Number(top));
  const separator = pathAndQuery.includes('?') ? '&' : '?';
  let skip = 0;
  let link;
  for (;;) {
    const path = link ?? `${pathAndQuery}${separator}$top=${top}${skip ? `&$skip=${skip}` : ''}`;
    const page = getJson(service, path);
    if (!page || !Array.isArray(page.value)) {
      throw upstreamError(200, 'MalformedPage', `a page has no \`value\` list (${service})`);
    }
    yield page.value;
    const next = page['@odata.nextLink'];
    if (typeof next === 'string') {
      if (next === link) {
        throw upstreamError(200, 'MalformedPage', '`@odata.nextLink` names the page it came from');
      }
      link = next;
      continue;
    }
    if (link !== undefined || page.value.length < top) {
      return;
    }
    skip += page.value.length;
  }
}

/** Writes `message` to the operator at `level` ("trace" ... "error"; warn and error show by
 * default, the others with `skillhost -v`). */
export function log(level, message) {
  hostLog(level, message);
}
