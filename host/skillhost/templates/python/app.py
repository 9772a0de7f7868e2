"""`{{id}}`: a skillhost skill in Python (contract skillhost:skill@0.1.0).

Reads the first page of incidents of the bound connection and returns how many there were and
their ids. Replace `describe` and `invoke` with what your skill does; `skillhost_skill` has the
helpers (paging, errors, input, logging).
"""

import json

import skillhost_skill as sk
from wit_world import exports

# The skill's own version, reported by `describe()`.
VERSION = "0.1.0"


class Guest(exports.Guest):
    def describe(self):
        return sk.describe(
            "{{id}}",
            VERSION,
            "Reads the first incidents of the bound connection.",
            parameters=[
                sk.param("top", "integer", "How many incidents to read.", default=10,
                         minimum=1, maximum=100),
            ],
            services=["defender", "graph"],
            output_description="`incidents`: how many were read; `ids`: their ids.",
        )

    def invoke(self, input):
        params = sk.read_input(input)
        info = sk.connection_info()
        if sk.api_of(info) == "graph":
            service, path, id_field = "graph", "/v1.0/security/incidents", "id"
        else:
            service, path, id_field = "defender", "/api/incidents", "incidentId"
        first_page = next(sk.pages(service, path, params["top"]))
        ids = [incident.get(id_field) for incident in first_page]
        return json.dumps({"connection": info.name, "incidents": len(ids), "ids": ids})
