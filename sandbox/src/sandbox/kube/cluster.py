"""The cluster behind the API: the store, the registry strategies of each kind (what a
create/update may set, defaults, validation, generation), deletion with its propagation
policies and the garbage collector, namespaces, and the controllers' work queues."""

from __future__ import annotations

import asyncio
import copy
import logging

from . import audit, errors, rbac
from . import resources as R
from . import validation as V
from .auth import Authenticator
from .queue import WorkQueue
from .selectors import selector_string
from .services import Services
from .store import Event, Store, new_uid, now_iso
from .workloads import Workloads, random_suffix

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


class Cluster:
    def __init__(self, runtime, settings):
        self.runtime = runtime
        self.settings = settings
        self.store = Store(settings.kube_watch_history)
        self.workloads = Workloads(self)
        self.services = Services(self)
        self.deployments = WorkQueue("deployments", self.workloads.sync_deployment)
        self.replicasets = WorkQueue("replicasets", self.workloads.sync_replicaset)
        self.endpoints = WorkQueue("endpoints", self.services.sync_endpoints)
        self.uids: dict[str, tuple[R.Resource, str, str]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.store.subscribe(self._on_event)
        for name in SYSTEM_NAMESPACES:
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            self._stamp(ns)
            V.default_namespace(ns)
            self.store.create(R.NAMESPACES, ns)
        # the default policy every cluster starts with (discovery, self reviews, cluster-admin)
        for resource, objects in (
            (R.CLUSTERROLES, rbac.BOOTSTRAP_CLUSTER_ROLES),
            (R.CLUSTERROLEBINDINGS, rbac.BOOTSTRAP_CLUSTER_ROLE_BINDINGS),
        ):
            for obj in copy.deepcopy(objects):
                obj.update(apiVersion=resource.api_version, kind=resource.kind)
                self._stamp(obj)
                self.store.create(resource, obj)
        self.authn = Authenticator(settings.token, self.store)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for q in (self.deployments, self.replicasets, self.endpoints):
            q.loop = loop

    async def stop(self) -> None:
        for q in (self.deployments, self.replicasets, self.endpoints):
            q.close()
        for task in list(self._tasks):
            task.cancel()
        for key in [k for k in self.runtime.proxies if k.startswith("kube/")]:
            await self.runtime.close_proxy(key)

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events -------------------------------------------------------------------------
    def _on_event(self, resource: R.Resource, event: Event) -> None:
        meta = event.obj["metadata"]
        audit.on_event(self, resource, event)  # first: before the garbage collector acts on it
        uid = meta.get("uid")
        if event.type == "DELETED":
            self.uids.pop(uid, None)
        elif uid:
            self.uids[uid] = (resource, meta.get("namespace", ""), meta["name"])
        self.workloads.on_event(resource, event)
        ns = meta.get("namespace", "")
        if resource is R.SERVICES:
            self._propagate(event)
            self.endpoints.add(ns)
            if event.type == "DELETED":
                self.services.forget(ns, meta["name"])
            self.spawn(self.services.sync_proxies(ns, meta["name"]))
        if event.type == "DELETED":
            self._collect(resource, event.obj)
            if resource.namespaced:
                self._maybe_finish_namespace(ns)

    def _propagate(self, event: Event) -> None:
        """Tell the proxies' propagation model (sandbox/runtime/propagation.py) of a selector
        change; endpoints follow the stored selector at once, the proxies only later."""
        meta = event.obj["metadata"]
        key = ("kube", meta["namespace"], meta["name"])
        selector = event.obj["spec"].get("selector") or None
        if event.type == "ADDED":
            self.runtime.propagation.created(key, selector)
        elif event.type == "DELETED":
            self.runtime.propagation.forget(key)
        elif event.old is not None and (event.old["spec"].get("selector") or None) != selector:
            self.runtime.propagation.changed(key, selector)

    # -- helpers ------------------------------------------------------------------------
    def _stamp(self, obj: dict) -> None:
        meta = obj["metadata"]
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_iso()
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)

    def namespace_ready(self, resource: R.Resource, ns: str, name: str) -> None:
        """NamespaceLifecycle admission: no new content in a missing or terminating namespace."""
        current = self.store.peek(R.NAMESPACES, "", ns)
        if current is None:
            raise errors.not_found("namespaces", "", ns)
        if current["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                resource.plural,
                resource.group,
                name,
                f"unable to create new content in namespace {ns} because it is being terminated",
            )

    # -- create -------------------------------------------------------------------------
    async def create(self, resource: R.Resource, ns: str, obj: dict, dry_run: bool = False) -> dict:
        meta = obj.setdefault("metadata", {})
        if resource.namespaced:
            meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        self._stamp(obj)
        # only kinds whose registry strategy tracks spec changes carry a generation
        meta.pop("generation", None)
        if resource in (R.DEPLOYMENTS, R.REPLICASETS):
            meta["generation"] = 1
        errs: list = []
        if resource is R.DEPLOYMENTS:
            obj["status"] = {}  # PrepareForCreate: a new deployment has an empty status
            V.default_deployment(obj)
            errs = V.validate_deployment(obj)
        elif resource is R.SERVICES:
            obj["status"] = {"loadBalancer": {}}
            V.default_service(obj)
            errs = V.validate_service(obj, self.settings.node_port_range)
        elif resource is R.NAMESPACES:
            V.default_namespace(obj)
            errs = V.validate_namespace(obj)
        elif rbac.is_rbac(resource):
            rbac.default(resource, obj)
            errs = rbac.validate(resource, obj)
        errors.raise_invalid(resource.kind, resource.group, meta.get("name", ""), errs)
        if resource.namespaced:
            self.namespace_ready(resource, ns, meta["name"])
        if self.store.peek(resource, ns, meta["name"]) is not None:
            raise errors.already_exists(resource.plural, resource.group, meta["name"])
        if resource is R.SERVICES:
            self.services.allocate(obj, None)
            if dry_run:
                self.services.unreserve(obj)
            else:
                self.services.commit(obj, None)
        if dry_run:  # dryRun=All: everything but the write
            return copy.deepcopy(obj)
        created = self.store.create(resource, obj)
        if resource is R.SERVICES:
            await self.services.sync_proxies(ns, meta["name"])  # listening before the answer
        return created

    # -- update -------------------------------------------------------------------------
    def current(self, resource: R.Resource, ns: str, name: str) -> dict:
        obj = self.store.get(resource, ns, name)
        if obj is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return obj

    async def update(
        self,
        resource: R.Resource,
        ns: str,
        name: str,
        new: dict,
        subresource: str = "",
        expect_rv: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """PUT (and the last step of PATCH): the registry's PrepareForUpdate, validation,
        then an optimistic-concurrency write."""
        old = self.current(resource, ns, name)
        meta = new.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if resource.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = meta.get("resourceVersion") or None
        if expect_rv is None:
            expect_rv = rv
        if expect_rv is not None and expect_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name, errors.MODIFIED)
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = ns
        new["apiVersion"], new["kind"] = resource.api_version, resource.kind
        # system fields come from the stored object
        for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is not None:
                new["status"] = status
            else:
                new.pop("status", None)
        else:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        errs: list = []
        if resource is R.DEPLOYMENTS:
            V.default_deployment(new)
            if subresource != "status":
                errs = V.validate_deployment_update(new, old)
            if new["spec"] != old["spec"] or new["metadata"].get("annotations") != old["metadata"].get("annotations"):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        elif resource is R.SERVICES:
            if subresource != "status":
                self.services.drop_type_dependent(new, old)
            V.default_service(new)
            if subresource != "status":
                errs = V.validate_service_update(new, old, self.settings.node_port_range)
        elif resource is R.NAMESPACES:
            new.setdefault("spec", {}).setdefault("finalizers", old.get("spec", {}).get("finalizers", ["kubernetes"]))
            new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            errs = V.validate_namespace(new)
            if subresource != "status":
                new["status"] = old.get("status")
        elif rbac.is_rbac(resource):
            rbac.default(resource, new)
            errs = rbac.validate(resource, new, old)
        errors.raise_invalid(resource.kind, resource.group, name, errs)
        if resource is R.SERVICES and subresource != "status":
            self.services.allocate(new, old)
            if dry_run:
                self.services.unreserve(new)
            else:
                self.services.commit(new, old)
        if dry_run:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return new
        result = self.store.update(resource, new, expect_rv=old["metadata"]["resourceVersion"])
        if resource is R.SERVICES:
            await self.services.sync_proxies(ns, name)
        return result

    # -- scale subresource --------------------------------------------------------------
    def scale_of(self, d: dict) -> dict:
        m = d["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": m["name"],
                "namespace": m["namespace"],
                "uid": m["uid"],
                "resourceVersion": m["resourceVersion"],
                "creationTimestamp": m["creationTimestamp"],
            },
            "spec": {"replicas": d["spec"].get("replicas", 1)},
            "status": {
                "replicas": (d.get("status") or {}).get("replicas", 0),
                "selector": selector_string(d["spec"].get("selector")),
            },
        }

    async def update_scale(self, ns: str, name: str, scale: dict) -> dict:
        d = self.current(R.DEPLOYMENTS, ns, name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        rv = (scale.get("metadata") or {}).get("resourceVersion") or None
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.bad_request(
                "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal "
                "into Go struct field ScaleSpec.spec.replicas of type int32"
            )
        if replicas < 0:
            errors.raise_invalid(
                "Scale",
                "autoscaling",
                name,
                [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        d["spec"]["replicas"] = replicas
        d["metadata"]["resourceVersion"] = rv
        updated = await self.update(R.DEPLOYMENTS, ns, name, d)
        return self.scale_of(updated)

    # -- delete -------------------------------------------------------------------------
    def dependents(self, obj: dict) -> list[tuple[R.Resource, dict]]:
        uid = obj["metadata"]["uid"]
        ns = obj["metadata"].get("namespace")
        found = []
        for resource in (R.REPLICASETS, R.PODS, R.ENDPOINTSLICES):
            for o in self.store.list(resource, ns):
                if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or []):
                    found.append((resource, o))
        return found

    def delete_object(
        self,
        resource: R.Resource,
        ns: str,
        name: str,
        propagation: str | None,
        grace: int | None = None,
        preconditions: dict | None = None,
        dry_run: bool = False,
    ) -> tuple[int, dict]:
        obj = self.store.get(resource, ns, name)
        if obj is None:
            raise errors.not_found(resource.plural, resource.group, name)
        preconditions = preconditions or {}
        if preconditions.get("uid") and preconditions["uid"] != obj["metadata"]["uid"]:
            raise errors.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {obj['metadata']['uid']}",
            )
        if (
            preconditions.get("resourceVersion")
            and preconditions["resourceVersion"] != obj["metadata"]["resourceVersion"]
        ):
            raise errors.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{obj['metadata']['resourceVersion']}",
            )
        if dry_run:
            if resource in (R.PODS, R.SERVICES, R.NAMESPACES):
                return 200, obj
            return 200, self._success(resource, obj)
        if resource is R.PODS:
            return 200, self.workloads.delete_pod(ns, name, grace) or obj
        if resource is R.NAMESPACES:
            return 200, self._delete_namespace(obj)
        propagation = propagation or "Background"
        if obj["metadata"].get("deletionTimestamp"):
            return 200, obj  # already being deleted
        if propagation == "Foreground":
            obj["metadata"]["deletionTimestamp"] = now_iso()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if FOREGROUND not in finalizers:
                finalizers.append(FOREGROUND)
            if obj["metadata"].get("generation"):
                obj["metadata"]["generation"] += 1  # rest.BeforeDelete bumps it
            updated = self.store.update(resource, obj)
            for dep_resource, dep in self.dependents(updated):
                self._delete_dependent(dep_resource, dep, "Foreground")
            self._maybe_finalize(updated["metadata"]["uid"])
            return 200, self.store.get(resource, ns, name) or updated
        if propagation == "Orphan":
            for dep_resource, dep in self.dependents(obj):
                orphan = copy.deepcopy(dep)
                orphan["metadata"]["ownerReferences"] = [
                    r for r in orphan["metadata"].get("ownerReferences") or [] if r.get("uid") != obj["metadata"]["uid"]
                ]
                if not orphan["metadata"]["ownerReferences"]:
                    del orphan["metadata"]["ownerReferences"]
                self.store.update(dep_resource, orphan)
        gone = self.store.delete(resource, ns, name)
        if resource in (R.SERVICES, R.SERVICEACCOUNTS):
            return 200, gone  # these registries return the deleted object (ReturnDeletedObject)
        return 200, self._success(resource, obj)

    @staticmethod
    def _success(resource: R.Resource, obj: dict) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": obj["metadata"]["name"],
                **({"group": resource.group} if resource.group else {}),
                "kind": resource.plural,
                "uid": obj["metadata"]["uid"],
            },
        }

    def _delete_dependent(self, resource: R.Resource, obj: dict, propagation: str) -> None:
        meta = obj["metadata"]
        try:
            self.delete_object(resource, meta.get("namespace", ""), meta["name"], propagation)
        except errors.ApiError:
            pass

    def _collect(self, resource: R.Resource, obj: dict) -> None:
        """The garbage collector, on a deletion: dependents of the deleted object go
        (background), and an owner waiting in foreground deletion may now go too."""
        for dep_resource, dep in self.dependents(obj):
            self._delete_dependent(dep_resource, dep, "Background")
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._maybe_finalize(ref.get("uid"))

    def _maybe_finalize(self, uid: str | None) -> None:
        where = self.uids.get(uid or "")
        if where is None:
            return
        resource, ns, name = where
        owner = self.store.get(resource, ns, name)
        if owner is None or FOREGROUND not in (owner["metadata"].get("finalizers") or []):
            return
        if self.dependents(owner):
            return
        if resource is R.REPLICASETS:
            group = self.workloads.groups.get((ns, name))
            if group is not None and not group.gone:
                return
        owner["metadata"]["finalizers"].remove(FOREGROUND)
        if owner["metadata"]["finalizers"]:
            self.store.update(resource, owner)
        else:
            self.store.delete(resource, ns, name)

    # -- namespaces ---------------------------------------------------------------------
    def _delete_namespace(self, ns_obj: dict) -> dict:
        name = ns_obj["metadata"]["name"]
        if name in SYSTEM_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        if not ns_obj["metadata"].get("deletionTimestamp"):
            ns_obj["metadata"]["deletionTimestamp"] = now_iso()
            ns_obj["metadata"]["deletionGracePeriodSeconds"] = 0
            ns_obj["status"] = {"phase": "Terminating"}
            ns_obj = self.store.update(R.NAMESPACES, ns_obj)
            for resource in (
                R.DEPLOYMENTS,
                R.SERVICES,
                R.REPLICASETS,
                R.PODS,
                R.SERVICEACCOUNTS,
                R.ROLES,
                R.ROLEBINDINGS,
            ):
                for obj in list(self.store.list(resource, name)):
                    self._delete_dependent(resource, obj, "Background")
            asyncio.get_running_loop().call_soon(self._maybe_finish_namespace, name)
        return ns_obj

    def _maybe_finish_namespace(self, ns: str) -> None:
        ns_obj = self.store.peek(R.NAMESPACES, "", ns)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for resource in R.ALL:
            if resource.namespaced and self.store.list(resource, ns):
                return
        if any(key[0] == ns for key in self.workloads.groups):
            return
        self.store.delete(R.NAMESPACES, "", ns)
