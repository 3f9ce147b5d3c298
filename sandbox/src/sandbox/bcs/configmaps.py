"""BCS Mesos configmaps: the scheduler's configmap API (sched/api/api.go createConfigMap,
updateConfigMap, deleteConfigMap; store/zk/configmap.go, store/etcd/configmap.go).

* create fetches first: an existing configmap is 1405201 "configmap already exist";
  otherwise the body (types.BcsConfigMap, decoded by the scheduler: a type error is
  1405010 with Go's message) is saved as sent.  Upstream the fetch and the save are two
  store calls with no lock between them; in the sandbox they run without yielding to the
  event loop, so of two concurrent creates exactly one succeeds.
* update: a missing configmap is 1405202 "configmap not exist"; the whole object is
  replaced (unlike services, labels are not kept).
* delete: both stores ignore a missing node (zk dbZk.Delete checks Exist first, the etcd
  store ignores IsNotFound), so deleting a missing configmap succeeds; the handler's
  1405202 branch ("node does not exist") is never reached.

bcs-mesos-watch copies configmaps into storage as they are (watch/storage/configmap.go):
resource type ``configmap``, data = the BcsConfigMap marshalled back.
"""

from __future__ import annotations

from .. import gojson
from . import gotypes
from .envelope import SCHED_NOT_FOUND, SCHED_RESOURCE_EXIST, BcsError


class ConfigMapOps:
    """Mixed into Scheduler."""

    def __init__(self):
        self.configmaps: dict[tuple[str, str], dict] = {}  # Go BcsConfigMap values

    @staticmethod
    def _key(cm: dict) -> tuple[str, str]:
        return cm["ObjectMeta"]["NameSpace"], cm["ObjectMeta"]["Name"]

    def create_configmap(self, cm: dict) -> None:
        key = self._key(cm)
        if key in self.configmaps:
            raise BcsError(SCHED_RESOURCE_EXIST, "configmap already exist")
        self.configmaps[key] = cm

    def update_configmap(self, cm: dict) -> None:
        key = self._key(cm)
        if key not in self.configmaps:
            raise BcsError(SCHED_NOT_FOUND, "configmap not exist")
        self.configmaps[key] = cm

    def delete_configmap(self, ns: str, name: str) -> None:
        self.configmaps.pop((ns, name), None)

    @staticmethod
    def configmap_json(cm: dict) -> dict:
        return gojson.encode(cm, gotypes.BcsConfigMap)
