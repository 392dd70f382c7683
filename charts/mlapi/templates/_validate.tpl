{{/* Combinations that cannot work fail the render with the values paths to change. */}}
{{- define "mlapi.validate" -}}
{{- $v := .Values }}
{{- $partitions := int $v.config.predictPartitions }}
{{- if or $v.worker.autoscaling.enabled $v.worker.keda.enabled }}
{{- if gt (int $v.worker.autoscaling.maxReplicas) $partitions }}
{{- fail (printf "worker.autoscaling.maxReplicas (%d) exceeds config.predictPartitions (%d): a worker without a partition gets no work. Lower worker.autoscaling.maxReplicas or raise config.predictPartitions (a new topic only; mlapi never changes an existing one)." (int $v.worker.autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if gt (int $v.worker.autoscaling.minReplicas) (int $v.worker.autoscaling.maxReplicas) }}
{{- fail "worker.autoscaling.minReplicas is above worker.autoscaling.maxReplicas" }}
{{- end }}
{{- else if gt (int $v.worker.replicaCount) $partitions }}
{{- fail (printf "worker.replicaCount (%d) exceeds config.predictPartitions (%d): a worker without a partition gets no work." (int $v.worker.replicaCount) $partitions) }}
{{- end }}
{{- if and $v.api.autoscaling.enabled (gt (int $v.api.autoscaling.minReplicas) (int $v.api.autoscaling.maxReplicas)) }}
{{- fail "api.autoscaling.minReplicas is above api.autoscaling.maxReplicas" }}
{{- end }}
{{- if and $v.worker.keda.enabled (not (.Capabilities.APIVersions.Has "keda.sh/v1alpha1")) }}
{{- fail "worker.keda.enabled needs KEDA in the cluster (API keda.sh/v1alpha1 is missing): install KEDA, or set worker.keda.enabled=false to scale on CPU (worker.autoscaling). With `helm template`, pass --api-versions keda.sh/v1alpha1." }}
{{- end }}
{{- if and (not $v.redis.enabled) (not $v.externalRedis.url) }}
{{- fail "redis.enabled is false but externalRedis.url is empty: give the URL of your Redis/Valkey (redis:// or rediss://), or set redis.enabled=true" }}
{{- end }}
{{- if and (not $v.kafka.enabled) (not $v.externalKafka.bootstrap) }}
{{- fail "kafka.enabled is false but externalKafka.bootstrap is empty: give your brokers' host:port list, or set kafka.enabled=true" }}
{{- end }}
{{- if include "mlapi.kafkaSasl" . }}
{{- if not (has $v.externalKafka.saslMechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) }}
{{- fail (printf "externalKafka.securityProtocol is %s: set externalKafka.saslMechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" $v.externalKafka.securityProtocol) }}
{{- end }}
{{- if or (not $v.externalKafka.username) (not (or $v.externalKafka.password $v.externalKafka.existingSecret)) }}
{{- fail (printf "externalKafka.securityProtocol is %s: set externalKafka.username and externalKafka.existingSecret (or externalKafka.password)" $v.externalKafka.securityProtocol) }}
{{- end }}
{{- end }}
{{- if and $v.kafka.enabled (gt (int (include "mlapi.topicReplication" .)) (int $v.kafka.replicaCount)) }}
{{- fail (printf "config.topicReplication (%s) exceeds kafka.replicaCount (%d): a topic cannot have more replicas than brokers" (include "mlapi.topicReplication" .) (int $v.kafka.replicaCount)) }}
{{- end }}
{{- if not (include "mlapi.externalDatabase" .) }}
{{- if gt (int $v.feedback.replicaCount) 1 }}
{{- fail (printf "feedback.replicaCount is %d but the database is SQLite on a ReadWriteOnce volume, which serves one pod: set feedback.database.existingSecret (or feedback.database.url) to a PostgreSQL URL, or feedback.replicaCount=1" (int $v.feedback.replicaCount)) }}
{{- end }}
{{- if and $v.feedback.retrain.enabled (eq $v.feedback.retrain.mode "cronjob") }}
{{- fail "feedback.retrain.mode=cronjob needs feedback.database.existingSecret (or feedback.database.url): the CronJob's pod may land on another node than the feedback pod, and the SQLite volume is ReadWriteOnce. Use feedback.retrain.mode=sidecar with SQLite." }}
{{- end }}
{{- end }}
{{- if and $v.httpRoute.enabled $v.ingress.enabled }}
{{- fail "httpRoute.enabled and ingress.enabled are both true: expose the API one way (the Gateway API HTTPRoute is preferred)" }}
{{- end }}
{{- if and $v.httpRoute.enabled (not $v.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs: the Gateway(s) to attach to, e.g. [{name: eg, namespace: envoy-gateway-system}]" }}
{{- end }}
{{- if and $v.ingress.enabled (dig "networkPolicy" "enabled" true ($v.global | default dict)) (not $v.networkPolicy.apiFrom) (not (include "mlapi.apiServiceExternal" .)) }}
{{- fail "ingress.enabled needs networkPolicy.apiFrom: the pods of your ingress controller, which the NetworkPolicy must let reach the API, e.g. [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}] (or global.networkPolicy.enabled=false)" }}
{{- end }}
{{- if and $v.ingress.enabled $v.ingress.hosts $v.ingress.host }}
{{- fail "ingress.host and ingress.hosts are both set: move ingress.host into ingress.hosts ([{host: <name>}]) and leave ingress.host empty" }}
{{- end }}
{{- if and $v.ingress.enabled $v.ingress.tls $v.ingress.tlsSecretName }}
{{- fail "ingress.tlsSecretName and ingress.tls are both set: move it into ingress.tls ([{secretName: <secret>, hosts: [<name>]}]) and leave ingress.tlsSecretName empty" }}
{{- end }}
{{- if $v.ingress.enabled }}
{{- include "mlapi.validateIngressPaths" . }}
{{- end }}
{{- range $sub := list "redis" "kafka" }}
{{- if (index $.Values $sub).enabled }}
{{- $theirs := include (printf "mlapi.%s.namespace" $sub) $ }}
{{- if ne $theirs (include "mlapi.namespace" $) }}
{{- fail (printf "the bundled %s would go to namespace %s and the app to %s: they must share one (their Services and NetworkPolicies are namespace-local). Set global.namespaceOverride to move everything, or give %s.namespaceOverride the same value as namespaceOverride." $sub $theirs (include "mlapi.namespace" $) $sub) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
