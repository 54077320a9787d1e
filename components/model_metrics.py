"""The metrics sidecar of an autoscaled model server: vLLM's /metrics on a port of its own.

vLLM serves /metrics on its API port, beside /invocations, /pooling and /tokenize, which its API
key does not guard (vllm 0.32.0 entrypoints/serve/middleware/authenticate.py GUARDED_PREFIX), so
that port admits only the gateway's pods (model_serving.gateway_only_policy_spec). The managed
scraper reaches pods from elastic network interfaces in the private subnets, where every pod's
address lies too (VPC CNI), so admitting it on the API port would open the unguarded endpoints to
the whole cluster. Instead this sidecar answers `GET /metrics` (and nothing else) on
`METRICS_PORT` with what vLLM's /metrics returns on localhost, and the NetworkPolicy admits the
private subnets on that port only.

It runs vLLM's image (which the node pulls for vLLM anyway) with Python's standard library.
"""

from __future__ import annotations

from .settings.serving import METRICS_SIDECAR_REQUESTS
from .workloads import container_security_context

METRICS_PORT = 8090
METRICS_PATH = "/metrics"
SCRAPE_TIMEOUT_SECONDS = 10

# Only GET /metrics is forwarded, with the headers that choose the exposition format; any other
# path is 404 and any other method 501 (BaseHTTPRequestHandler has no handler for it). vLLM
# unreachable (starting, stopping) is 503, which the scraper records as a failed scrape.
PROXY_SCRIPT = """\
import http.server, os, urllib.error, urllib.request

UPSTREAM = os.environ["UPSTREAM"]
TIMEOUT = float(os.environ["TIMEOUT_SECONDS"])
FORWARDED_REQUEST = ("Accept", "Accept-Encoding")
FORWARDED_RESPONSE = ("Content-Type", "Content-Encoding")


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        headers = {name: self.headers[name] for name in FORWARDED_REQUEST if self.headers[name]}
        try:
            with urllib.request.urlopen(urllib.request.Request(UPSTREAM, headers=headers),
                                        timeout=TIMEOUT) as response:
                body = response.read()
                status, upstream = response.status, response.headers
        except urllib.error.HTTPError as error:
            self.send_error(error.code)
            return
        except OSError:
            self.send_error(503, "model server not reachable")
            return
        self.send_response(status)
        for name in FORWARDED_RESPONSE:
            if upstream[name]:
                self.send_header(name, upstream[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Metrics).serve_forever()
"""


def metrics_container(*, image: str, image_pull_policy: str, upstream_port: int) -> dict:
    """The sidecar container (a plain container: it has nothing to do before vLLM starts or
    after it stops)."""
    return {
        "name": "metrics",
        "image": image,
        "image_pull_policy": image_pull_policy,
        "command": ["python3", "-c", PROXY_SCRIPT],
        "env": [
            {"name": "UPSTREAM", "value": f"http://127.0.0.1:{upstream_port}{METRICS_PATH}"},
            {"name": "PORT", "value": str(METRICS_PORT)},
            {"name": "TIMEOUT_SECONDS", "value": str(SCRAPE_TIMEOUT_SECONDS)},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        ],
        "ports": [{"name": "metrics", "container_port": METRICS_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": f"{METRICS_SIDECAR_REQUESTS[0]}m",
                                   "memory": f"{METRICS_SIDECAR_REQUESTS[1]}Mi"},
                      "limits": {"cpu": "200m", "memory": "128Mi"}},
        # The port answers whether vLLM is up or not: a TCP check, so a model still loading
        # does not restart its sidecar.
        "readiness_probe": {"tcp_socket": {"port": "metrics"}, "period_seconds": 10},
        "liveness_probe": {"tcp_socket": {"port": "metrics"}, "period_seconds": 30,
                           "failure_threshold": 3},
        "security_context": container_security_context(read_only_root=True),
    }


def scraper_policy_spec(private_subnet_cidrs: list[str]) -> dict:
    """NetworkPolicy spec: the model pods accept the metrics port from the private subnets,
    where the managed scraper's network interfaces are; the API port stays the gateway's."""
    return {
        "pod_selector": {},
        "policy_types": ["Ingress"],
        "ingress": [{
            "from": [{"ip_block": {"cidr": cidr}} for cidr in private_subnet_cidrs],
            "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
        }],
    }
