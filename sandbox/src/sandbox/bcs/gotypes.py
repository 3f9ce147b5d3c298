"""The BCS v4 request types, as Go declares them (bcs-common/common/types/*.go).

Field names, JSON keys, ``omitempty`` and types are copied from meta.go,
deployment.go, service.go and rc.go; quirks are kept on purpose:
``maxUnavilable`` (sic), ``clusterIP`` without ``omitempty`` (its tag says
``omitemtpy``), ``healthChecks`` delay/interval as ``int``.

Where the sandbox does not model a type (Constraint, Process, extended
resources), ``Any`` keeps the value as sent.
"""

from __future__ import annotations

from ..gojson import BOOL, INT, INT32, INT64, STRING, TIME, UINT32, Any, Field, Map, Ptr, Slice, Struct, named

F = Field
BcsDataType = named("types.BcsDataType", STRING)

TypeMeta = Struct(
    "types.TypeMeta",
    [
        F("APIVersion", "apiVersion", STRING),
        F("Kind", "kind", BcsDataType),
    ],
)

ObjectMeta = Struct(
    "types.ObjectMeta",
    [
        F("Name", "name", STRING),
        F("NameSpace", "namespace", STRING),
        F("CreationTimestamp", "creationTimestamp", TIME, omitempty=True),
        F("Labels", "labels", Map(STRING), omitempty=True),
        F("Annotations", "annotations", Map(STRING), omitempty=True),
        F("ClusterName", "clusterName", STRING, omitempty=True),
    ],
)

# -- service.go ---------------------------------------------------------------------
ServicePort = Struct(
    "types.ServicePort",
    [
        F("Name", "name", STRING),
        F("DomainName", "domainName", STRING, omitempty=True),
        F("Path", "path", STRING),
        F("Protocol", "protocol", STRING),
        F("Port", "servicePort", INT),
        F("TargetPort", "targetPort", INT, omitempty=True),
        F("NodePort", "nodePort", INT, omitempty=True),
    ],
)
ServiceSpec = Struct(
    "types.ServiceSpec",
    [
        F("Selector", "selector", Map(STRING)),
        F("Type", "type", STRING, omitempty=True),
        F("ClusterIP", "clusterIP", Slice(STRING)),  # tag says "omitemtpy": not an option Go knows
        F("Ports", "ports", Slice(ServicePort)),
    ],
)
BcsService = Struct(
    "types.BcsService",
    [
        F("TypeMeta", "", TypeMeta, inline=True),
        F("ObjectMeta", "metadata", ObjectMeta, omitempty=True),
        F("Spec", "spec", ServiceSpec),
    ],
)

# -- rc.go --------------------------------------------------------------------------
EnvVar = Struct("types.EnvVar", [F("Name", "name", STRING), F("Value", "value", STRING, omitempty=True)])
KeyToValue = Struct("types.KeyToValue", [F("Key", "key", STRING), F("Value", "value", STRING)])
ContainerPort = Struct(
    "types.ContainerPort",
    [
        F("Name", "name", STRING),
        F("HostPort", "hostPort", INT, omitempty=True),
        F("ContainerPort", "containerPort", INT),
        F("HostIP", "hostIP", STRING, omitempty=True),
        F("Protocol", "protocol", STRING),
    ],
)
BcsHealthCheckType = named("types.BcsHealthCheckType", STRING)
HealthCheck = Struct(
    "types.HealthCheck",
    [
        F("Type", "type", BcsHealthCheckType, omitempty=True),
        F("DelaySeconds", "delaySeconds", INT, omitempty=True),
        F("GracePeriodSeconds", "gracePeriodSeconds", INT, omitempty=True),
        F("IntervalSeconds", "intervalSeconds", INT, omitempty=True),
        F("TimeoutSeconds", "timeoutSeconds", INT, omitempty=True),
        F("ConsecutiveFailures", "consecutiveFailures", UINT32, omitempty=True),
        F(
            "Command",
            "command",
            Ptr(Struct("types.CommandHealthCheck", [F("Value", "value", STRING, omitempty=True)])),
            omitempty=True,
        ),
        F(
            "Http",
            "http",
            Ptr(
                Struct(
                    "types.HttpHealthCheck",
                    [
                        F("Port", "port", INT32),
                        F("PortName", "portName", STRING),
                        F("Scheme", "scheme", STRING),
                        F("Path", "path", STRING),
                        F("Headers", "headers", Map(STRING)),
                    ],
                )
            ),
            omitempty=True,
        ),
        F(
            "Tcp",
            "tcp",
            Ptr(Struct("types.TcpHealthCheck", [F("Port", "port", INT32), F("PortName", "portName", STRING)])),
            omitempty=True,
        ),
    ],
)
ResourceList = Struct(
    "types.ResourceList",
    [
        F("Cpu", "cpu", STRING, omitempty=True),
        F("Mem", "memory", STRING, omitempty=True),
        F("Storage", "storage", STRING, omitempty=True),
    ],
)
ResourceRequirements = Struct(
    "types.ResourceRequirements",
    [
        F("Limits", "limits", ResourceList, omitempty=True),
        F("Requests", "requests", ResourceList, omitempty=True),
        F("ExtendedResources", "extendedResources", Slice(Any()), omitempty=True),
    ],
)
Volume = Struct(
    "types.Volume",
    [
        F("HostPath", "hostPath", STRING, omitempty=True),
        F("MountPath", "mountPath", STRING, omitempty=True),
        F("SubPath", "subPath", STRING, omitempty=True),
        F("ReadOnly", "readOnly", BOOL, omitempty=True),
    ],
)
KeyToPath = Struct(
    "types.KeyToPath",
    [
        F("Type", "type", named("types.DataUsageType", STRING)),
        F("DataKey", "dataKey", STRING),
        F("DataKeyAlias", "dataKeyAlias", STRING),
        F("KeyOrPath", "keyOrPath", STRING, omitempty=True),
        F("SubPath", "subPath", STRING, omitempty=True),
        F("ReadOnly", "readOnly", BOOL, omitempty=True),
        F("User", "user", STRING, omitempty=True),
    ],
)
SecretItem = Struct(
    "types.SecretItem",
    [
        F("Type", "type", named("types.DataUsageType", STRING), omitempty=True),
        F("DataKey", "dataKey", STRING, omitempty=True),
        F("KeyOrPath", "keyOrPath", STRING, omitempty=True),
        F("SubPath", "subPath", STRING, omitempty=True),
        F("ReadOnly", "readOnly", BOOL, omitempty=True),
        F("User", "user", STRING, omitempty=True),
    ],
)
Container = Struct(
    "types.Container",
    [
        F("Name", "name", STRING, omitempty=True),
        F("Hostname", "hostname", STRING, omitempty=True),
        F("Command", "command", STRING, omitempty=True),
        F("Args", "args", Slice(STRING), omitempty=True),
        F("Parameters", "parameters", Slice(Ptr(KeyToValue)), omitempty=True),
        F("Type", "type", STRING, omitempty=True),
        F("Image", "image", STRING),
        F("ImagePullUser", "imagePullUser", STRING),
        F("ImagePullPasswd", "imagePullPasswd", STRING),
        F("ImagePullPolicy", "imagePullPolicy", named("types.ImagePullPolicyType", STRING)),
        F("Privileged", "privileged", BOOL),
        F("Env", "env", Slice(EnvVar), omitempty=True),
        F("WorkingDir", "workingDir", STRING, omitempty=True),
        F("Ports", "ports", Slice(ContainerPort), omitempty=True),
        F("HealthChecks", "healthChecks", Slice(Ptr(HealthCheck)), omitempty=True),
        F("Resources", "resources", ResourceRequirements, omitempty=True),
        F("Cpuset", "cpuset", BOOL, omitempty=True),
        F(
            "Volumes",
            "volumes",
            Slice(
                Struct("types.VolumeUnit", [F("Name", "name", STRING), F("Volume", "volume", Volume, omitempty=True)])
            ),
            omitempty=True,
        ),
        F(
            "ConfigMaps",
            "configmaps",
            Slice(
                Struct(
                    "types.ConfigMap",
                    [F("Name", "name", STRING), F("Items", "items", Slice(KeyToPath), omitempty=True)],
                )
            ),
            omitempty=True,
        ),
        F(
            "Secrets",
            "secrets",
            Slice(
                Struct(
                    "types.Secret",
                    [
                        F("SecretName", "secretName", STRING, omitempty=True),
                        F("Items", "items", Slice(SecretItem), omitempty=True),
                    ],
                )
            ),
            omitempty=True,
        ),
    ],
)
PodSpec = Struct(
    "types.PodSpec",
    [
        F("NodeSelector", "nodeSelector", Map(STRING), omitempty=True),
        F("Containers", "containers", Slice(Container), omitempty=True),
        F("Processes", "processes", Slice(Any()), omitempty=True),
        F("NetworkMode", "networkMode", STRING, omitempty=True),
        F("NetworkType", "networktype", STRING, omitempty=True),
        F(
            "NetLimit",
            "netLimit",
            Ptr(Struct("types.NetLimit", [F("EgressLimit", "egressLimit", INT)])),
            omitempty=True,
        ),
    ],
)
PodTemplateSpec = Struct(
    "types.PodTemplateSpec",
    [
        F("ObjectMeta", "metadata", ObjectMeta, omitempty=True),
        F("PodSpec", "spec", PodSpec, omitempty=True),
    ],
)
UpdatePolicy = Struct(
    "types.UpdatePolicy",
    [
        F("UpdateDelay", "updateDelay", INT, omitempty=True),
        F("MaxRetries", "maxRetries", INT, omitempty=True),
        F("MaxFailovers", "maxFailovers", INT, omitempty=True),
        F("Action", "action", STRING, omitempty=True),
    ],
)
RestartPolicy = Struct(
    "types.RestartPolicy",
    [
        F("Policy", "policy", named("types.RestartPolicyType", STRING)),
        F("Interval", "interval", INT, omitempty=True),
        F("Backoff", "backoff", INT, omitempty=True),
        F("MaxTimes", "maxtimes", INT, omitempty=True),
        F("HostRetainTime", "hostRetainTime", INT64, omitempty=True),
    ],
)
KillPolicy = Struct("types.KillPolicy", [F("GracePeriod", "gracePeriod", INT64)])

ReplicaController = Struct(
    "types.ReplicaController",
    [
        F("TypeMeta", "", TypeMeta, inline=True),
        F("ObjectMeta", "metadata", ObjectMeta),
        F(
            "ReplicaControllerSpec",
            "spec",
            Struct(
                "types.ReplicaControllerSpec",
                [
                    F("Instance", "instance", INT),
                    F("Selector", "selector", Map(STRING), omitempty=True),
                    F("Template", "template", Ptr(PodTemplateSpec)),
                ],
            ),
        ),
        F("UpPolicy", "updatePolicy", UpdatePolicy, omitempty=True),
        F("RestartPolicy", "restartPolicy", RestartPolicy, omitempty=True),
        F("KillPolicy", "killPolicy", KillPolicy, omitempty=True),
        F("Constraints", "constraint", Ptr(Any("types.Constraint")), omitempty=True),
    ],
)

# -- deployment.go ------------------------------------------------------------------
RollingUpdate = Struct(
    "types.RollingUpdate",
    [
        F("MaxUnavailable", "maxUnavilable", INT),  # sic, the key the code reads
        F("MaxSurge", "maxSurge", INT),
        F("UpgradeDuration", "upgradeDuration", UINT32),
        F("RollingManually", "rollingManually", BOOL),
        F("RollingOrder", "rollingOrder", named("types.RollingOrderType", STRING)),
    ],
)
UpgradeStrategy = Struct(
    "types.UpgradeStrategy",
    [
        F("Type", "type", named("types.UpgradeStrategyType", STRING)),
        F("RollingUpdate", "rollingupdate", Ptr(RollingUpdate)),
    ],
)
BcsDeployment = Struct(
    "types.BcsDeployment",
    [
        F("TypeMeta", "", TypeMeta, inline=True),
        F("ObjectMeta", "metadata", ObjectMeta),
        F(
            "Spec",
            "spec",
            Struct(
                "types.BcsDeploymentSpec",
                [
                    F("Instance", "instance", INT),
                    F("Selector", "selector", Map(STRING), omitempty=True),
                    F("Template", "template", Ptr(PodTemplateSpec)),
                    F("Strategy", "strategy", UpgradeStrategy),
                    F("PauseDeployment", "pauseDeployment", BOOL),
                ],
            ),
        ),
        F("UpPolicy", "updatePolicy", UpdatePolicy, omitempty=True),
        F("RestartPolicy", "restartPolicy", RestartPolicy, omitempty=True),
        F("KillPolicy", "killPolicy", KillPolicy, omitempty=True),
        F("Constraints", "constraint", Ptr(Any("types.Constraint")), omitempty=True),
    ],
)

# The scheduler's own types (bcs-common/pkg/scheduler/schetypes/application.go).
DeploymentReferApplication = Struct(
    "types.DeploymentReferApplication",
    [
        F("ApplicationName", "name", STRING),
        F("CurrentTargetInstances", "curr_target_instances", INT),
        F("CurrentRollingInstances", "CurrentRollingInstances", INT),  # its tag is `josn:"..."`: Go uses the field name
    ],
)

# -- configmap.go -------------------------------------------------------------------
BcsConfigMapItem = Struct(
    "types.BcsConfigMapItem",
    [
        F("Type", "type", named("types.BcsConfigMapSourceType", STRING)),
        F("Content", "content", STRING),
        F("RemoteUser", "RemoteUser", STRING),  # its tag is `josn:"remoteUser,omitempty"`: Go uses the field name
        F("RemotePasswd", "remotePasswd", STRING, omitempty=True),
    ],
)
BcsConfigMap = Struct(
    "types.BcsConfigMap",
    [
        F("TypeMeta", "", TypeMeta, inline=True),  # `json:",inline"`: no name, so embedded and promoted
        F("ObjectMeta", "metadata", ObjectMeta),
        F("Data", "datas", Map(BcsConfigMapItem)),
    ],
)
