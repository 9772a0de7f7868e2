"""`sample_incidents_py`: the example Python skill of skillhost (contract skillhost:skill@0.1.0).

Walks the incidents of the bound connection page by page (OData `$top`/`$skip` or
`@odata.nextLink`), up to `limit` incidents, and returns how many it read, over how many pages,
how many of each severity, and their ids. `tests/components/sample-incidents` is its Rust twin,
making the same calls and returning the same result, for the tests and the benchmarks.
"""

import json

import skillhost_skill as sk
from wit_world import exports

VERSION = "0.1.0"


class Guest(exports.Guest):
    def describe(self):
        return sk.describe(
            "sample_incidents_py",
            VERSION,
            "Samples the incidents of the bound connection: counts by severity, and their ids.",
            parameters=[
                sk.param("limit", "integer", "The most incidents to read.", default=20,
                         minimum=1, maximum=10000),
                sk.param("page_size", "integer", "Incidents asked for per page.", default=5,
                         minimum=1, maximum=100),
            ],
            services=["defender", "graph"],
            output_description="`incidents`, `pages`, `by_severity` (counts) and `ids`.",
        )

    def invoke(self, input):
        params = sk.read_input(input)
        limit = params["limit"]
        info = sk.connection_info()
        if sk.api_of(info) == "graph":
            service, path, id_field = "graph", "/v1.0/security/incidents", "id"
        else:
            service, path, id_field = "defender", "/api/incidents", "incidentId"
        ids, by_severity, pages = [], {}, 0
        for page in sk.pages(service, path, params["page_size"]):
            pages += 1
            for incident in page[: limit - len(ids)]:
                ids.append(incident.get(id_field))
                severity = incident.get("severity")
                severity = severity.lower() if isinstance(severity, str) else "unknown"
                by_severity[severity] = by_severity.get(severity, 0) + 1
            if len(ids) >= limit:
                break
        sk.log("info", f"read {len(ids)} incidents in {pages} pages")
        return json.dumps({
            "incidents": len(ids),
            "pages": pages,
            "by_severity": dict(sorted(by_severity.items())),
            "ids": ids,
        })
