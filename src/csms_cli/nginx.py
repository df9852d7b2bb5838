"""An nginx configuration that routes the REST API by path, from the routing table.

One server on one port: ``/api/v1/...`` goes to the service that owns the path
(longest prefix, ``csms_cli.routing``), and so does each public path outside it
(a provider's webhook, receipts, station file transfer; the uploads pass bodies of
any size through unbuffered: the service limits them), ``/openapi.json`` is the merged document
(a file under ``docs_root``), ``/docs`` a Swagger UI page for it, ``/healthz``
the proxy's own health. A path no service owns gets a problem+json 404 from the
proxy; a service that is down, a problem+json 503. It runs unprivileged
(pid and temporary files under /tmp, logs on stdout/stderr), so it works in the
official ``nginx`` image with a read-only root file system.
"""

from collections.abc import Mapping, Sequence

from csms_cli.routing import RouteTable

LISTEN_PORT = 8080
DOCS_ROOT = "/srv/csms"
# Above the services' CSMS_COMMAND_TIMEOUT_S (30 s): a command waits for the station.
READ_TIMEOUT_S = 75

_NOT_FOUND = (
    '{"type":"about:blank","title":"Not Found","status":404,'
    '"detail":"no CSMS service serves this path"}'
)
_UNAVAILABLE = (
    '{"type":"urn:csms:problem:service-unavailable","title":"Service unavailable",'
    '"status":503,"detail":"the service that serves this path cannot be reached; retry later"}'
)
_TIMEOUT = (
    '{"type":"urn:csms:problem:upstream-timeout","title":"Upstream timeout","status":504,'
    '"detail":"the service that serves this path did not answer in time"}'
)
_DOCS_HTML = (
    '<!doctype html><html><head><meta charset="utf-8"><title>CSMS API</title>'
    '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">'
    '</head><body><div id="swagger-ui"></div>'
    '<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>'
    '<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>'
    "</body></html>"
)
_ACCESS_LOG_FORMAT = (
    '{"time":"$time_iso8601","remote_addr":"$remote_addr","method":"$request_method",'
    '"uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,'
    '"duration_s":$request_time,"upstream":"$upstream_addr",'
    '"upstream_duration_s":"$upstream_response_time","request_id":"$request_id"}'
)


def upstream_name(service: str) -> str:
    return "csms_" + service.replace("-", "_")


def render_nginx(
    table: RouteTable,
    upstreams: Mapping[str, Sequence[str]],
    *,
    header: str = "",
    listen_port: int = LISTEN_PORT,
    docs_root: str = DOCS_ROOT,
) -> str:
    """The whole ``nginx.conf``; ``upstreams`` gives each service's ``host:port`` replicas."""
    missing = sorted({route.service for route in table.routes} - set(upstreams))
    if missing:
        raise ValueError(f"no upstream address for {', '.join(missing)}")
    lines = [*(f"# {line}".rstrip() for line in header.splitlines()), *_MAIN]
    for service in table.services:
        lines += _upstream(service.name, upstreams[service.name])
    lines += _server_head(listen_port, docs_root)
    lines.append("        # Longest prefix first: the first location that matches owns the path.")
    for route in table.in_match_order():
        target = upstream_name(route.service)
        # The service limits what it accepts (e.g. CSMS_FIRMWARE_MAX_LOG_BYTES).
        streamed = "client_max_body_size 0; proxy_request_buffering off; " if route.streams else ""
        lines.append(
            f'        location ~ "{route.regex()}" {{ {streamed}proxy_pass http://{target}; }}'
        )
    lines += _server_tail()
    return "\n".join(lines) + "\n"


_MAIN = [
    "worker_processes auto;",
    "pid /tmp/nginx.pid;",
    "error_log stderr warn;",
    "",
    "events {",
    "    worker_connections 4096;",
    "}",
    "",
    "http {",
    "    client_body_temp_path /tmp/nginx-client-body;",
    "    proxy_temp_path /tmp/nginx-proxy;",
    "    fastcgi_temp_path /tmp/nginx-fastcgi;",
    "    uwsgi_temp_path /tmp/nginx-uwsgi;",
    "    scgi_temp_path /tmp/nginx-scgi;",
    f"    log_format csms_json escape=json '{_ACCESS_LOG_FORMAT}';",
    "    access_log /dev/stdout csms_json;",
    "    server_tokens off;",
    "    client_max_body_size 1m;",
    "",
]


def _upstream(service: str, replicas: Sequence[str]) -> list[str]:
    if not replicas:
        raise ValueError(f"{service}: no upstream replica")
    return [
        f"    upstream {upstream_name(service)} {{",
        *(f"        server {replica} max_fails=1 fail_timeout=5s;" for replica in replicas),
        "        keepalive 16;",
        "    }",
        "",
    ]


def _server_head(listen_port: int, docs_root: str) -> list[str]:
    return [
        "    server {",
        f"        listen {listen_port};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Request-Id $request_id;",
        f"        proxy_read_timeout {READ_TIMEOUT_S}s;",
        # Only idempotent requests are retried on the next replica (nginx's default):
        # a POST that reached a service is never sent twice.
        "        proxy_next_upstream error timeout;",
        "        error_page 502 503 = @unavailable;",
        "        error_page 504 = @timeout;",
        "",
        "        location = /healthz {",
        "            default_type application/json;",
        """            return 200 '{"status":"ok"}';""",
        "        }",
        "        location = /openapi.json {",
        f"            root {docs_root};",
        "            default_type application/json;",
        "        }",
        "        location = /docs {",
        "            default_type text/html;",
        f"            return 200 '{_DOCS_HTML}';",
        "        }",
    ]


def _server_tail() -> list[str]:
    return [
        "        location / {",
        "            default_type application/problem+json;",
        f"            return 404 '{_NOT_FOUND}';",
        "        }",
        "        location @unavailable {",
        "            default_type application/problem+json;",
        "            add_header Retry-After 5 always;",
        f"            return 503 '{_UNAVAILABLE}';",
        "        }",
        "        location @timeout {",
        "            default_type application/problem+json;",
        f"            return 504 '{_TIMEOUT}';",
        "        }",
        "    }",
        "}",
    ]
