"""Discovery documents: /version, /api, /api/v1, /apis, /apis/<group>[/<version>], in the
legacy (APIResourceList / APIGroupList) form and the aggregated apidiscovery.k8s.io/v2
form that kubectl 1.37 asks for first."""

from __future__ import annotations

from . import resources as R

VERSION = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _resources_of(group: str, version: str) -> list[R.Resource]:
    return [r for r in R.ALL if r.group == group and r.version == version]


def api_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def resource_list(group: str, version: str) -> dict:
    gv = f"{group}/{version}" if group else version
    items = []
    for r in _resources_of(group, version):
        entry = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        }
        if r.short_names:
            entry["shortNames"] = r.short_names
        if r.categories:
            entry["categories"] = r.categories
        items.append(entry)
        for sub, verbs in r.subresources.items():
            sub_entry = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
            }
            if sub in R.SUBRESOURCE_KIND:
                g, v, k = R.SUBRESOURCE_KIND[sub]
                sub_entry.update(group=g, version=v, kind=k)
            items.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


def _groups() -> list[str]:
    return sorted({g for g, _ in R.GROUP_VERSIONS if g})


def api_group(group: str) -> dict:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for g, v in R.GROUP_VERSIONS if g == group]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def api_group_list() -> dict:
    groups = []
    for g in _groups():
        doc = api_group(g)
        doc.pop("kind")
        doc.pop("apiVersion")
        groups.append(doc)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


# -- aggregated discovery (apidiscovery.k8s.io/v2) --------------------------------------

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "g=apidiscovery.k8s.io" in params and "as=APIGroupDiscoveryList" in params and "v=v2" in params:
            return True
    return False


def _discovery_resource(r: R.Resource) -> dict:
    entry = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": r.verbs,
    }
    if r.short_names:
        entry["shortNames"] = r.short_names
    if r.categories:
        entry["categories"] = r.categories
    subs = []
    for sub, verbs in r.subresources.items():
        g, v, k = R.SUBRESOURCE_KIND.get(sub, (r.group, r.version, r.kind))
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": verbs})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(legacy: bool) -> dict:
    """/api (legacy=True) or /apis as an APIGroupDiscoveryList."""
    items = []
    groups = [""] if legacy else _groups()
    for g in groups:
        versions = []
        for group, version in R.GROUP_VERSIONS:
            if group != g:
                continue
            versions.append(
                {
                    "version": version,
                    "freshness": "Current",
                    "resources": [_discovery_resource(r) for r in _resources_of(group, version)],
                }
            )
        items.append({"metadata": {"name": g, "creationTimestamp": None}, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
