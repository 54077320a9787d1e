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
- an init container seeds the pod's cache with every published entry of the model;
- a sidecar waits for vLLM's /health, then publishes each entry the pod made that is not yet
  published: a copy under a dot-name unique to the pod, then one `rename` to the entry's name,
  which fails if another pod published it first (its copy is then dropped). Readers skip
  dot-names, so they only ever see complete entries.
The shared tree is keyed by vLLM's version and the model's name: a vLLM upgrade starts a new
tree (README, "Cold starts", for removing old ones), and vLLM's own hashes keep GPU types and
configurations apart inside it.

Compiled entries are code that vLLM loads: only the model pods, which share one service
account, image and API key, can write there (the model-cache access point is mounted by them
alone), so a published entry crosses no trust boundary the pods do not already share.
"""

from __future__ import annotations

from .workloads import container_security_context

# Where vLLM caches in the pod: $VLLM_CACHE_ROOT (vllm envs.py; excluded from its cache hash).
LOCAL_ROOT_ENV = "VLLM_CACHE_ROOT"
SHARED_MOUNT = "/models/shared"
SHARED_DIR = "compile-cache"
AOT_DIR = "torch_aot_compile"
HEALTH_URL = "http://127.0.0.1:8000/health"

# The entries of a torch_compile_cache tree, as paths relative to it: each hash directory at
# the top, and each hash directory under torch_aot_compile (vllm compilation/decorators.py).
# Names starting with a dot are never entries (the shell's * skips them).
_UNITS = f"""units() {{
  for entry in "$1"/*; do
    [ -d "$entry" ] || continue
    name=${{entry##*/}}
    if [ "$name" = {AOT_DIR} ]; then
      for aot in "$entry"/*; do [ -d "$aot" ] && echo "{AOT_DIR}/${{aot##*/}}"; done
    else
      echo "$name"
    fi
  done
}}
"""

SEED_SCRIPT = _UNITS + """local="$LOCAL_CACHE"; shared="$SHARED_CACHE"
mkdir -p "$local"
[ -d "$shared" ] || { echo "no published compile cache yet in $shared"; exit 0; }
units "$shared" | while read -r unit; do
  [ -e "$local/$unit" ] && continue
  parent=$(dirname "$local/$unit"); mkdir -p "$parent"
  partial="$parent/.partial.${unit##*/}"
  rm -rf "$partial"
  if cp -R "$shared/$unit" "$partial" && mv -T "$partial" "$local/$unit"; then
    echo "seeded $unit"
  else
    # A failed copy costs a compile, never a start.
    rm -rf "$partial"; echo "could not seed $unit; vLLM compiles it"
  fi
done
exit 0
"""

PUBLISH_SCRIPT = _UNITS + """local="$LOCAL_CACHE"; shared="$SHARED_CACHE"
trap 'exit 0' TERM INT
until python3 -c "import urllib.request; urllib.request.urlopen('$HEALTH_URL', timeout=5)" \\
    2>/dev/null; do
  sleep "${HEALTH_POLL_SECONDS:-10}" & wait $!
done
if [ -d "$local" ]; then
  units "$local" | while read -r unit; do
    [ -e "$shared/$unit" ] && continue
    parent=$(dirname "$shared/$unit"); mkdir -p "$parent" || continue
    staging="$parent/.$POD_NAME.${unit##*/}"
    rm -rf "$staging"
    # rename(2) onto an existing non-empty directory fails: the first publisher wins.
    if cp -R "$local/$unit" "$staging" && mv -T "$staging" "$shared/$unit" 2>/dev/null; then
      echo "published $unit"
    else
      rm -rf "$staging"; echo "kept the copy another pod published first: $unit"
    fi
  done
fi
while true; do sleep 3600 & wait $!; done
"""


def shared_path(vllm_version: str, model_name: str) -> str:
    return f"{SHARED_MOUNT}/{SHARED_DIR}/{vllm_version}/{model_name}"


def local_path(vllm_cache_root: str) -> str:
    return f"{vllm_cache_root}/torch_compile_cache"


def _container(name: str, script: str, *, image: str, local: str, shared: str,
               home_mount: str) -> dict:
    return {
        "name": name,
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "env": [
            {"name": "LOCAL_CACHE", "value": local},
            {"name": "SHARED_CACHE", "value": shared},
            {"name": "HEALTH_URL", "value": HEALTH_URL},
            {"name": "POD_NAME", "value_from": {"field_ref": {"field_path": "metadata.name"}}},
        ],
        # Copies only: a core's share and page cache for files of a few hundred MB.
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "volume_mounts": [{"name": "home", "mount_path": home_mount},
                          {"name": "model-cache", "mount_path": SHARED_MOUNT},
                          {"name": "tmp", "mount_path": "/tmp"}],
        "security_context": container_security_context(read_only_root=True),
    }


def init_containers(*, image: str, image_pull_policy: str, vllm_version: str, model_name: str,
                    vllm_cache_root: str, home_mount: str) -> list[dict]:
    """The seeding init container, then the publishing sidecar (an init container with
    restartPolicy Always: Kubernetes native sidecars, GA in 1.33; it starts before vLLM and stops
    after it). Both run vLLM's image, which the node pulls for vLLM anyway."""
    local, shared = local_path(vllm_cache_root), shared_path(vllm_version, model_name)
    seed = _container("seed-compile-cache", SEED_SCRIPT, image=image, local=local, shared=shared,
                      home_mount=home_mount)
    publish = _container("publish-compile-cache", PUBLISH_SCRIPT, image=image, local=local,
                         shared=shared, home_mount=home_mount)
    publish["restart_policy"] = "Always"
    for container in (seed, publish):
        container["image_pull_policy"] = image_pull_policy
    return [seed, publish]
