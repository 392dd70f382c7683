{{/*
The KRaft quorum: every node is a voter, and the voter set (controller.quorum.voters) is
fixed when the cluster is formed. Two renders refuse what would break it:
- an even count: a quorum of 2n voters survives no more failures than one of 2n-1 (2 survives
  none), so 2 or 4 only adds a broker that can cost the quorum;
- a count other than the running cluster's (helm upgrade): the new voters' list disagrees
  with the one on the brokers' disks and the quorum never forms.
Messages name the value as it is set from the parent chart.
*/}}
{{- define "kafka.replicaCountPath" -}}
kafka.replicaCount (replicaCount in the kafka subchart)
{{- end -}}

{{- define "kafka.validateQuorum" -}}
{{- $replicas := include "kafka.replicas" . | int -}}
{{- if and (gt $replicas 1) (eq (mod $replicas 2) 0) -}}
{{- fail (printf "%s is %d, an even number: a KRaft quorum of %d voters survives no more node failures than one of %d (2 survives none, 4 one, like 3). Use an odd count: 1 for development, 3 (or 5) in production." (include "kafka.replicaCountPath" .) $replicas $replicas (sub $replicas 1)) -}}
{{- end -}}
{{- include "kafka.assertVotersUnchanged" (dict
      "existing" (lookup "apps/v1" "StatefulSet" (include "kafka.namespace" .) (include "kafka.fullname" .))
      "replicas" $replicas
      "name" (include "kafka.fullname" .)
      "namespace" (include "kafka.namespace" .)
      "path" (include "kafka.replicaCountPath" .)) -}}
{{- end -}}

{{/*
Compares the voter count of an existing StatefulSet with the one this render asks for.
Call with (dict "existing" <the lookup result, or empty> "replicas" N "name" .. "namespace" ..
"path" ..). The running voter count is the brokers' KAFKA_REPLICAS (what the voters list was
built from); spec.replicas is the fallback, so a `kubectl scale` to 0 for maintenance does
not block an upgrade. Without a cluster (helm template, client dry-run) lookup returns an
empty map and nothing is checked.
*/}}
{{- define "kafka.assertVotersUnchanged" -}}
{{- $existing := .existing | default dict -}}
{{- if $existing -}}
{{- $current := -1 -}}
{{- range (dig "spec" "template" "spec" "containers" list $existing) -}}
{{- if eq (.name | toString) "kafka" -}}
{{- range (.env | default list) -}}
{{- if and (eq (.name | toString) "KAFKA_REPLICAS") (regexMatch "^[0-9]+$" (.value | default "" | toString)) -}}
{{- $current = int .value -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if lt $current 0 -}}
{{- $current = int (dig "spec" "replicas" 1 $existing) -}}
{{- end -}}
{{- if ne $current (int .replicas) -}}
{{- fail (printf "%s is %d but the Kafka running as StatefulSet %s/%s has %d KRaft voters. The voter set (controller.quorum.voters) is fixed when the cluster forms; changing the count breaks the quorum and the brokers stop. Keep %d, or start a fresh Kafka: install a new release, or delete the StatefulSet %s and its PVCs (data-%s-*), which loses the jobs still queued in Kafka, then upgrade." .path (int .replicas) .namespace .name $current $current .name .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
