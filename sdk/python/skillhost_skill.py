"""Helpers for skillhost skills written in Python (contract skillhost:skill@0.1.0).

Build a skill with componentize-py, which generates the `wit_world` bindings this module uses:

    componentize-py -d wit/skill@0.1.0 -w skill componentize app -o my_skill.wasm

What is here: `describe` and `param` (the answer of `describe()`), `read_input` (the validated
input), `get_json` and `pages` (HTTP through the host, with OData paging), `status_error` and
`fetch_error` (answers and host errors as the skill error the operator's guidance is built on),
`fail` (raise a skill error), `log` and `emit`.

Raising one of the errors these helpers build (`componentize_py_types.Err`) returns that error
from `invoke`; any other exception crashes the invocation, and the host shows its type, message
and last frames to the operator.
"""

import json

from componentize_py_types import Err
from wit_world.imports import connection as _connection
from wit_world.imports import emit as _emit
from wit_world.imports import http as _http
from wit_world.imports import log as _log
from wit_world.imports import types as _types

CONTRACT_VERSION = "0.1.0"

_KINDS = {
    "text": _types.ParamKind.TEXT,
    "integer": _types.ParamKind.INTEGER,
    "boolean": _types.ParamKind.BOOLEAN,
    "timestamp": _types.ParamKind.TIMESTAMP,
}

_ERRORS = {
    "invalid-input": _types.SkillError_InvalidInput,
    "not-found": _types.SkillError_NotFound,
    "denied": _types.SkillError_Denied,
    "unauthorized": _types.SkillError_Unauthorized,
    "forbidden": _types.SkillError_Forbidden,
    "throttled": _types.SkillError_Throttled,
    "timeout": _types.SkillError_Timeout,
    "internal": _types.SkillError_Internal,
}


def param(name, kind, description, required=False, default=None, allowed=(), minimum=None,
          maximum=None):
    """One parameter: `kind` is "text", "integer", "boolean" or "timestamp"; `default` is a
    Python value (encoded as JSON for the host)."""
    return _types.ParamSpec(
        name=name,
        description=description,
        kind=_KINDS[kind],
        required=required,
        default_value=None if default is None else json.dumps(default),
        allowed_values=list(allowed),
        minimum=minimum,
        maximum=maximum,
    )


def describe(id, version, description, parameters=(), services=(), columns=None,
             output_description="", name=None):
    """The answer of `describe()`. `version` is the skill's own version. Give `columns` to make
    the skill a dataset (rows leave through `emit`; `invoke` returns a summary)."""
    return _types.SkillInfo(
        id=id,
        name=name or id,
        version=version,
        description=description,
        parameters=list(parameters),
        services=list(services),
        output=_types.OutputKind.OBJECT if columns is None else _types.OutputKind.DATASET,
        columns=list(columns or ()),
        output_description=output_description,
    )


def fail(kind, message):
    """Raises the skill error `kind` ("invalid-input", "not-found", "denied", "unauthorized",
    "forbidden", "throttled", "timeout", "internal") with `message`."""
    raise Err(_ERRORS[kind](message))


def upstream_error(status, code, message):
    """The skill error for an upstream failure the other kinds do not describe."""
    return Err(_types.SkillError_Upstream(_types.UpstreamError(status=status, code=code,
                                                               message=message)))


def read_input(text):
    """The validated input of `invoke`, as a dict (defaults applied by the host)."""
    try:
        value = json.loads(text)
    except ValueError as e:
        fail("internal", f"the input is not JSON: {e}")
    if not isinstance(value, dict):
        fail("internal", "the input is not a JSON object")
    return value


def connection_info():
    """Non-secret facts about the bound connection: name, tenant, cloud, api, services."""
    return _connection.info()


def api_of(info):
    """"defender" or "graph": the incidents API of the connection `info` describes."""
    return "graph" if info.api == _connection.ApiFlavour.GRAPH else "defender"


def fetch_error(error):
    """The skill error (an `Err` to raise) for a request the host could not complete."""
    if isinstance(error, _http.HttpError_Denied):
        return Err(_types.SkillError_Denied(error.value))
    if isinstance(error, _http.HttpError_Unauthorized):
        return Err(_types.SkillError_Unauthorized(error.value))
    if isinstance(error, _http.HttpError_Timeout):
        return Err(_types.SkillError_Timeout(
            "the invocation's deadline passed while waiting for the API"))
    if isinstance(error, _http.HttpError_TooLarge):
        return upstream_error(200, "ResponseTooLarge",
                              f"the answer exceeded the host's cap of {error.value} bytes; "
                              "ask for smaller pages")
    why = getattr(error, "value", str(error))
    if why.startswith("the answer "):
        return upstream_error(200, "IncompleteResponse", why)
    return upstream_error(0, "Unreachable", why)


def status_error(service, status, body):
    """The skill error (an `Err` to raise) for a non-2xx answer of `service`."""
    code, message = "", body[:300].decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
        code = str(parsed["error"].get("code", ""))
        message = str(parsed["error"]["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    if status == 401:
        return Err(_types.SkillError_Unauthorized(
            f"the {service} service rejected the token (401): {message}"))
    if status == 403:
        return Err(_types.SkillError_Forbidden(
            f"the application lacks a permission the {service} service requires (403): "
            f"{message}"))
    if status == 404:
        return Err(_types.SkillError_NotFound(message))
    if status == 429:
        return Err(_types.SkillError_Throttled(
            f"the {service} service is still throttling after the host's retries: {message}"))
    return upstream_error(status, code, message)


def get_json(service, path_and_query):
    """GETs `path_and_query` on `service` of the bound connection and returns the JSON body;
    raises the matching skill error for a non-2xx answer or a host error."""
    request = _http.Request(service=service, method=_http.Method.GET,
                            path_and_query=path_and_query, headers=[], body=None)
    try:
        response = _http.send(request)
    except Err as e:
        raise fetch_error(e.value)
    if not 200 <= response.status < 300:
        raise status_error(service, response.status, response.body)
    try:
        return json.loads(response.body)
    except ValueError as e:
        raise upstream_error(response.status, "InvalidJson",
                             f"the {service} service answered with a body that is not JSON: {e}")


def pages(service, path_and_query, top):
    """Yields the pages (each a list of items) of an OData collection: `$top`/`$skip`, or
    `@odata.nextLink` when the service gives one, until a short page or the last link."""
    top = max(1, int(top))
    separator = "&" if "?" in path_and_query else "?"
    skip, link = 0, None
    while True:
        if link is not None:
            path = link
        else:
            path = f"{path_and_query}{separator}$top={top}"
            if skip:
                path += f"&$skip={skip}"
        page = get_json(service, path)
        items = page.get("value") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise upstream_error(200, "MalformedPage", f"a page has no `value` list ({service})")
        yield items
        next_link = page.get("@odata.nextLink")
        if isinstance(next_link, str):
            if next_link == link:
                raise upstream_error(200, "MalformedPage",
                                     "`@odata.nextLink` names the page it came from")
            link = next_link
            continue
        if link is not None or len(items) < top:
            return
        skip += len(items)


def log(level, message):
    """Writes `message` to the operator; `level` is "trace", "debug", "info", "warn" or
    "error" (warn and error show by default, the others with `skillhost -v`)."""
    _log.log(_log.Level[level.upper()], message)


def emit(row):
    """Hands one row (a dict) of a dataset to the host; raises when the host takes no more."""
    try:
        _emit.emit(json.dumps(row))
    except Err as e:
        fail("internal", f"the host took no more rows: {e.value}")
