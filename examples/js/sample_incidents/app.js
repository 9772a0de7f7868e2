// `sample_incidents_js`: the example JavaScript skill of skillhost (contract skillhost:skill@0.1.0).
//
// The same skill as the Python example (`examples/python/sample_incidents`) and its Rust twin
// (`tests/components/sample-incidents`): walks the incidents of the bound connection page by page
// (OData `$top`/`$skip` or `@odata.nextLink`), up to `limit`, and returns how many it read, over
// how many pages, how many of each severity, and their ids.

// A copy of sdk/js/skillhost_skill.js, made by `npm run build` (componentize-js reads only this
// folder).
import * as sk from './skillhost_skill.js';

const VERSION = '0.1.0';

export const guest = {
  describe() {
    return sk.describe(
      'sample_incidents_js',
      VERSION,
      'Samples the incidents of the bound connection: counts by severity, and their ids.',
      {
        parameters: [
          sk.param('limit', 'integer', 'The most incidents to read.', { default: 20, minimum: 1, maximum: 10000 }),
          sk.param('page_size', 'integer', 'Incidents asked for per page.', { default: 5, minimum: 1, maximum: 100 }),
        ],
        services: ['defender', 'graph'],
        outputDescription: '`incidents`, `pages`, `by_severity` (counts) and `ids`.',
      },
    );
  },

  invoke(input) {
    const params = sk.readInput(input);
    const limit = Number(params.limit);
    const [service, path, idField] = sk.connection().api === 'graph'
      ? ['graph', '/v1.0/security/incidents', 'id']
      : ['defender', '/api/incidents', 'incidentId'];
    const ids = [];
    const bySeverity = {};
    let pages = 0;
    for (const page of sk.pages(service, path, params.page_size)) {
      pages += 1;
      for (const incident of page.slice(0, limit - ids.length)) {
        ids.push(incident[idField] ?? null);
        const severity = typeof incident.severity === 'string' ? incident.severity.toLowerCase() : 'unknown';
        bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
      }
      if (ids.length >= limit) {
        break;
      }
    }
    sk.log('info', `read ${ids.length} incidents in ${pages} pages`);
    const sorted = Object.fromEntries(Object.entries(bySeverity).sort(([a], [b]) => (a < b ? -1 : 1)));
    return JSON.stringify({ incidents: ids.length, pages, by_severity: sorted, ids });
  },
};
