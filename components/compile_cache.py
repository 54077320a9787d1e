"""vLLM's torch.compile cache shared through the model-cache file system, safely.

vLLM compiles a model at startup (torch.compile, Inductor and Triton kernels) and caches the
result under `$VLLM_CACHE_ROOT/torch_compile_cache`, one directory per hash of everything that
changes the result: vLLM's version, the model, parallel and compilation configs, the
environment, torch and the GPU's device name (vllm 0.32.0 compilation/caching.py
`aot_compile_hash_factors`, compilation/backends.py, compiler_interface.py
`get_inductor_factors`). vLLM documents copying that directory between machines
(docs/design/torch_compile.md, docs/configuration/optimization.md), but not sharing it live:
it takes no lock, names its temporary files by process id (the same in every pod) and rewrites
`vllm_compile_cache.py` in place (backends.py), so two pods compiling into one NFS directory can
leave a torn entry that crashes the next start.

So each pod compiles into its own emptyDir, and entries move through the shared file system
only whole:
- an init container seeds the pod's cache with the model's most recently used published
  entries;
- a sidecar waits for vLLM's /health, then publishes each entry the pod made that is not yet
  published: a copy under a dot-name unique to the pod, then one `rename` to the entry's name,
  which fails if another pod published it first (its copy is then dropped). Readers skip
  dot-names, so they only ever see complete entries. It also prunes entries unused for two
  weeks, and on SIGTERM stops its copy and removes its staging directory.
The shared tree is keyed by vLLM's version and the model's name: a vLLM upgrade starts a new
tree (README, "Cold starts", for removing old ones), and vLLM's own hashes keep GPU types and
configurations apart inside it.

Compiled entries are code that vLLM loads: only the model pods, which share one service
account, image and API key, can write there (the model-cache access point is mounted by them
alone), so a published entry crosses no trust boundary the pods do not already share.
"""

from __future__ import annotations

from .settings.serving import SHARED_COMPILE_CACHE_REQUESTS
from .workloads import container_security_context

SHARED_MOUNT = "/models/shared"
SHARED_DIR = "compile-cache"
AOT_DIR = "torch_aot_compile"
# The newest entries a pod seeds (by when a pod last seeded or published them): each GPU type
# and configuration of a model has its own, and a pod needs one or two of them.
SEED_MAX_ENTRIES = 8
# A seed copy that takes longer is abandoned: compiling is cheaper than waiting more.
SEED_COPY_TIMEOUT_SECONDS = 300
# Entries no pod has seeded or published for this long are removed by the next publisher.
PRUNE_AFTER_DAYS = 14

# The entries of a torch_compile_cache tree, newest first, as paths relative to it: each hash
# directory at the top and each under torch_aot_compile (vllm compilation/backends.py,
# decorators.py). Names starting with a dot are staging copies, never entries.
_UNITS = f"""units() {{
  {{
    find "$1" -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -name {AOT_DIR} -printf '%T@ %f\\n'
    [ -d "$1/{AOT_DIR}" ] && find "$1/{AOT_DIR}" -mindepth 1 -maxdepth 1 -type d ! -name '.*' \\
      -printf '%T@ {AOT_DIR}/%f\\n'
  }} | sort -rn | cut -d' ' -f2
}}
"""

SEED_SCRIPT = _UNITS + f"""mine="$LOCAL_CACHE"; shared="$SHARED_CACHE"
mkdir -p "$mine"
[ -d "$shared" ] || {{ echo "no published compile cache yet in $shared"; exit 0; }}
units "$shared" | head -n {SEED_MAX_ENTRIES} | while read -r unit; do
  [ -e "$mine/$unit" ] && continue
  parent=$(dirname "$mine/$unit"); mkdir -p "$parent"
  partial="$parent/.partial.${{unit##*/}}"
  rm -rf "$partial"
  # cp fails when an entry is pruned under it (pruning renames it away first): never a torn copy.
  if timeout {SEED_COPY_TIMEOUT_SECONDS} cp -R "$shared/$unit" "$partial" \\
      && mv -T "$partial" "$mine/$unit"; then
    touch -c "$shared/$unit"  # in use: keeps it from pruning and first in the next seed
    echo "seeded $unit"
  else
    # A failed copy costs a compile, never a start.
    rm -rf "$partial"; echo "could not seed $unit; vLLM compiles it"
  fi
done
exit 0
"""

PUBLISH_SCRIPT = _UNITS + f"""mine="$LOCAL_CACHE"; shared="$SHARED_CACHE"
publish() {{
  until python3 -c "import urllib.request; urllib.request.urlopen('$HEALTH_URL', timeout=5)" \\
      2>/dev/null; do
    sleep "${{HEALTH_POLL_SECONDS:-10}}"
  done
  [ -d "$mine" ] || return 0
  units "$mine" | while read -r unit; do
    if [ -e "$shared/$unit" ]; then touch -c "$shared/$unit"; continue; fi
    parent=$(dirname "$shared/$unit"); mkdir -p "$parent" || continue
    staging="$parent/.$POD_NAME.${{unit##*/}}"
    rm -rf "$staging"
    # rename(2) onto an existing non-empty directory fails: the first publisher wins.
    if cp -R "$mine/$unit" "$staging" && mv -T "$staging" "$shared/$unit" 2>/dev/null; then
      echo "published $unit"
    else
      rm -rf "$staging"; echo "kept the copy another pod published first: $unit"
    fi
  done
  # Entries unused for {PRUNE_AFTER_DAYS} days (old GPU types, configurations, vLLM builds):
  # renamed away first, so a seed copying one fails instead of taking a torn entry.
  for top in "$shared" "$shared/{AOT_DIR}"; do
    [ -d "$top" ] || continue
    find "$top" -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -name {AOT_DIR} \\
        -mtime +{PRUNE_AFTER_DAYS} -printf '%f\\n' | while read -r old; do
      mv -T "$top/$old" "$top/.$POD_NAME.prune.$old" 2>/dev/null && rm -rf "$top/.$POD_NAME.prune.$old" \\
        && echo "pruned $old"
    done
  done
}}
# SIGTERM reaches only this shell (PID 1): stop the whole process group, copies included, and
# remove this pod's staging copies, so a pod stops at once and leaves nothing behind.
stop() {{
  trap '' TERM INT
  kill -TERM 0 2>/dev/null
  wait
  rm -rf "$shared"/.$POD_NAME.* "$shared/{AOT_DIR}"/.$POD_NAME.*
  exit 0
}}
trap stop TERM INT
publish &
wait $!
while true; do sleep 3600 & wait $!; done
"""


def shared_path(vllm_version: str, model_name: str) -> str:
    """The model's tree on the model-cache claim, per vLLM version."""
    return f"{SHARED_MOUNT}/{SHARED_DIR}/{vllm_version}/{model_name}"


def local_path(vllm_cache_root: str) -> str:
    return f"{vllm_cache_root}/torch_compile_cache"


def _container(name: str, script: str, *, image: str, local: str, shared: str,
               home_mount: str, health_url: str) -> dict:
    return {
        "name": name,
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "env": [
            {"name": "LOCAL_CACHE", "value": local},
            {"name": "SHARED_CACHE", "value": shared},
            {"name": "HEALTH_URL", "value": health_url},
            {"name": "POD_NAME", "value_from": {"field_ref": {"field_path": "metadata.name"}}},
            # vLLM's image is CUDA's: a container that asks for no GPU sees none (the NVIDIA
            # runtime leaves `void` unmodified: NVIDIA/nvidia-container-toolkit internal/modifier).
            {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"},
        ],
        # Copies only: a core's share and page cache for files of a few hundred MB.
        "resources": {"requests": {"cpu": f"{SHARED_COMPILE_CACHE_REQUESTS[0]}m",
                                   "memory": f"{SHARED_COMPILE_CACHE_REQUESTS[1]}Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "volume_mounts": [{"name": "home", "mount_path": home_mount},
                          {"name": "model-cache", "mount_path": SHARED_MOUNT},
                          {"name": "tmp", "mount_path": "/tmp"}],
        "security_context": container_security_context(read_only_root=True),
    }


def init_containers(*, image: str, image_pull_policy: str, vllm_version: str, model_name: str,
                    vllm_cache_root: str, home_mount: str, port: int) -> list[dict]:
    """The seeding init container, then the publishing sidecar (an init container with
    restartPolicy Always: Kubernetes native sidecars, GA in 1.33; it starts before vLLM and stops
    after it). Both run vLLM's image, which the node pulls for vLLM anyway."""
    local, shared = local_path(vllm_cache_root), shared_path(vllm_version, model_name)
    health = f"http://127.0.0.1:{port}/health"
    seed = _container("seed-compile-cache", SEED_SCRIPT, image=image, local=local, shared=shared,
                      home_mount=home_mount, health_url=health)
    publish = _container("publish-compile-cache", PUBLISH_SCRIPT, image=image, local=local,
                         shared=shared, home_mount=home_mount, health_url=health)
    publish["restart_policy"] = "Always"
    for container in (seed, publish):
        container["image_pull_policy"] = image_pull_policy
    return [seed, publish]
