"""A small kustomize renderer for tocsin's deploy/ tree, so the manifests can be tested
without the kustomize binary.

It implements exactly the kustomization fields deploy/ uses — resources (files and
directories), namespace, images, configMapGenerator, secretGenerator — including a
content-hash name suffix on generated objects and the rewriting of references to
them. Any other field raises, so a kustomization cannot grow a feature these tests
silently ignore. The suffix is a content hash like kustomize's but not byte-identical
to it; test_kustomize_parity.py compares the output with `kubectl kustomize` (where
kubectl is installed) with suffixes normalised.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "configMapGenerator",
    "secretGenerator",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                  "StorageClass", "CustomResourceDefinition", "IngressClass"}  # fmt: skip

Doc = dict[str, Any]


class KustomizeError(Exception):
    pass


def render(directory: Path) -> list[Doc]:
    """The objects `kustomize build directory` would emit (order aside)."""
    directory = directory.resolve()
    kfile = directory / "kustomization.yaml"
    spec = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{kfile}: fields this renderer does not implement: {unknown}")
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            docs += render(target)
        elif target.is_file():
            docs += [d for d in yaml.safe_load_all(target.read_text()) if d]
        else:
            raise KustomizeError(f"{kfile}: resource {entry} does not exist")
    renames: dict[tuple[str, str], str] = {}
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in spec.get(key, []):
            obj = _generate(directory, kind, gen)
            renames[(kind, gen["name"])] = obj["metadata"]["name"]
            docs.append(obj)
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    for doc in docs:
        for container in pod_containers(doc):
            _set_image(container, spec.get("images", []))
        _rename_references(doc, renames)
    return docs


def _generate(directory: Path, kind: str, gen: Doc) -> Doc:
    data: dict[str, str] = {}
    for literal in gen.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for item in gen.get("files", []):
        key, sep, rel = item.partition("=")
        if not sep:
            key, rel = Path(item).name, item
        path = directory / rel
        if not path.is_file():
            raise KustomizeError(f"{directory}: {gen['name']}: {rel} does not exist")
        data[key] = path.read_text()
    name = gen["name"]
    obj: Doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
    if kind == "Secret":
        obj["type"] = gen.get("type", "Opaque")
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        obj["data"] = data
    obj["metadata"]["name"] = f"{name}-{_hash(obj)}"
    return obj


def _hash(obj: Doc) -> str:
    """A name suffix that changes with the content, shaped like kustomize's: 10 hex
    digits of a sha256, with the characters kustomize avoids (0 1 3 a e) replaced."""
    fields: Doc = {"kind": obj["kind"], "name": obj["metadata"]["name"], "data": obj["data"]}
    if obj["kind"] == "Secret":
        fields["type"] = obj["type"]
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def pod_spec(doc: Doc) -> Doc | None:
    """The pod spec of a workload object (Deployment, Job, ...), else None."""
    spec = doc.get("spec") or {}
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    template = spec.get("template")
    return template["spec"] if isinstance(template, dict) else None


def pod_containers(doc: Doc) -> Iterator[Doc]:
    pod = pod_spec(doc)
    if pod:
        yield from pod.get("initContainers", [])
        yield from pod.get("containers", [])


def _split_image(ref: str) -> tuple[str, str]:
    """`registry:5000/app:1.2` -> (`registry:5000/app`, `1.2`); digests are not used here."""
    ref = ref.split("@", 1)[0]
    colon = ref.rfind(":")
    return (ref[:colon], ref[colon + 1 :]) if colon > ref.rfind("/") else (ref, "")


def _set_image(container: Doc, images: list[Doc]) -> None:
    name, tag = _split_image(container["image"])
    for image in images:
        if image["name"] == name:
            new_name = image.get("newName", name)
            new_tag = image.get("newTag", tag)
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _rename_references(doc: Doc, renames: dict[tuple[str, str], str]) -> None:
    def rename(kind: str, holder: Doc, key: str) -> None:
        if (kind, holder.get(key)) in renames:
            holder[key] = renames[(kind, holder[key])]

    pod = pod_spec(doc)
    if not pod:
        return
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            rename("ConfigMap", volume["configMap"], "name")
        if "secret" in volume:
            rename("Secret", volume["secret"], "secretName")
        for source in (volume.get("projected") or {}).get("sources", []):
            if "configMap" in source:
                rename("ConfigMap", source["configMap"], "name")
            if "secret" in source:
                rename("Secret", source["secret"], "name")
    for container in pod_containers(doc):
        for env_from in container.get("envFrom", []):
            if "configMapRef" in env_from:
                rename("ConfigMap", env_from["configMapRef"], "name")
            if "secretRef" in env_from:
                rename("Secret", env_from["secretRef"], "name")
        for env in container.get("env", []):
            source = env.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                rename("ConfigMap", source["configMapKeyRef"], "name")
            if "secretKeyRef" in source:
                rename("Secret", source["secretKeyRef"], "name")
