"""The metrics sidecar of an autoscaled model server: vLLM's /metrics on a port of its own.

vLLM serves /metrics on its API port, beside /invocations, /pooling and /tokenize, which its API
key does not guard (vllm 0.32.0 entrypoints/serve/middleware/authenticate.py GUARDED_PREFIX), so
that port admits only the gateway's pods (model_serving.gateway_only_policy_spec). The managed
scraper reaches pods from elastic network interfaces in the private subnets, where every pod's
address lies too (VPC CNI), so admitting it on the API port would open the unguarded endpoints to
the whole cluster. Instead this sidecar answers `GET /metrics` (and nothing else) on
`METRICS_PORT` with what vLLM's /metrics returns on localhost, and the NetworkPolicy admits the
private subnets on that port only.

It runs vLLM's image (which the node pulls for vLLM anyway) with Python's standard library. It
renders vLLM's /metrics at most once per CACHE_SECONDS, one render at a time, whatever asks: the
port is open to the private subnets, and a render runs on vLLM's own event loop. It outlives
vLLM's drain (its preStop waits until vLLM's port closes, at most as long as vLLM may drain),
so a leaving pod's load stays visible to KEDA while it finishes, and the pod still goes as soon
as vLLM is done.
"""

from __future__ import annotations

from .settings.serving import METRICS_SIDECAR_REQUESTS
from .workloads import container_security_context

METRICS_PORT = 8090
METRICS_PATH = "/metrics"
SCRAPE_TIMEOUT_SECONDS = 10
CACHE_SECONDS = 5

# Only GET /metrics is forwarded, with the headers that choose the exposition format; any other
# path is 404 and any other method 501 (BaseHTTPRequestHandler has no handler for it). vLLM
# unreachable (starting, stopping) is 503, which the scraper records as a failed scrape.
PROXY_SCRIPT = """\
import http.server, os, threading, time, urllib.error, urllib.request

UPSTREAM = os.environ["UPSTREAM"]
TIMEOUT = float(os.environ["TIMEOUT_SECONDS"])
CACHE = float(os.environ["CACHE_SECONDS"])
FORWARDED_REQUEST = ("Accept", "Accept-Encoding")
FORWARDED_RESPONSE = ("Content-Type", "Content-Encoding")
lock, cache = threading.Lock(), {}


def fetch(headers):
    # One render at a time, reused for CACHE seconds per set of format headers.
    key = tuple(sorted(headers.items()))
    with lock:
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE:
            return hit[1]
        with urllib.request.urlopen(urllib.request.Request(UPSTREAM, headers=headers),
                                    timeout=TIMEOUT) as response:
            result = (response.status, response.read(),
                      {name: response.headers[name] for name in FORWARDED_RESPONSE
                       if response.headers[name]})
        cache.clear()
        cache[key] = (time.monotonic(), result)
        return result


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        headers = {name: self.headers[name] for name in FORWARDED_REQUEST if self.headers[name]}
        try:
            status, body, upstream = fetch(headers)
        except urllib.error.HTTPError as error:
            self.send_error(error.code)
            return
        except OSError:
            self.send_error(503, "model server not reachable")
            return
        self.send_response(status)
        for name, value in upstream.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Metrics).serve_forever()
"""


# The sidecar's preStop: wait while vLLM's port still accepts connections (it closes when vLLM's
# drain ends), for at most STAYS_SECONDS.
WAIT_FOR_UPSTREAM_SCRIPT = """\
import os, socket, time

end = time.monotonic() + float(os.environ["STAYS_SECONDS"])
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", int(os.environ["UPSTREAM_PORT"])), 1).close()
    except OSError:
        break
    time.sleep(2)
"""


def metrics_container(*, image: str, image_pull_policy: str, upstream_port: int,
                      stays_seconds: int) -> dict:
    """The sidecar container (a plain container: it has nothing to do before vLLM starts). Its
    preStop keeps it up while vLLM still listens, at most `stays_seconds` (vLLM's preStop and
    drain)."""
    return {
        "name": "metrics",
        "image": image,
        "image_pull_policy": image_pull_policy,
        "command": ["python3", "-c", PROXY_SCRIPT],
        "env": [
            {"name": "UPSTREAM", "value": f"http://127.0.0.1:{upstream_port}{METRICS_PATH}"},
            {"name": "PORT", "value": str(METRICS_PORT)},
            {"name": "TIMEOUT_SECONDS", "value": str(SCRAPE_TIMEOUT_SECONDS)},
            {"name": "CACHE_SECONDS", "value": str(CACHE_SECONDS)},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            # The image is CUDA's (NVIDIA_VISIBLE_DEVICES=all): without this a container that asks
            # for no GPU would still see the node's GPUs through the NVIDIA runtime, which leaves a
            # container with `void` unmodified (NVIDIA/nvidia-container-toolkit
            # internal/modifier, visibleDevicesVoid).
            {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"},
            {"name": "UPSTREAM_PORT", "value": str(upstream_port)},
            {"name": "STAYS_SECONDS", "value": str(stays_seconds)},
        ],
        "lifecycle": {"pre_stop": {"exec": {"command": ["python3", "-c", WAIT_FOR_UPSTREAM_SCRIPT]}}},
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
