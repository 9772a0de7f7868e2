// `{{id}}`: a skillhost skill in JavaScript (contract skillhost:skill@0.1.0).
//
// Reads the first page of incidents of the bound connection and returns how many there were and
// their ids. Replace `describe` and `invoke` with what your skill does; `skillhost_skill.js` has
// the helpers (paging, errors, input, logging).

import * as sk from './skillhost_skill.js';

// The skill's own version, reported by `describe()`.
const VERSION = '0.1.0';

export const guest = {
  describe() {
    return sk.describe('{{id}}', VERSION, 'Reads the first incidents of the bound connection.', {
      parameters: [
        sk.param('top', 'integer', 'How many incidents to read.', { default: 10, minimum: 1, maximum: 100 }),
      ],
      services: ['defender', 'graph'],
      outputDescription: '`incidents`: how many were read; `ids`: their ids.',
    });
  },

  invoke(input) {
    const params = sk.readInput(input);
    const info = sk.connection();
    const [service, path, idField] = info.api === 'graph'
      ? ['graph', '/v1.0/security/incidents', 'id']
      : ['defender', '/api/incidents', 'incidentId'];
    const firstPage = sk.pages(service, path, params.top).next().value ?? [];
    const ids = firstPage.map((incident) => incident[idField]);
    return JSON.stringify({ connection: info.name, incidents: ids.length, ids }, null, 2);
  },
};
