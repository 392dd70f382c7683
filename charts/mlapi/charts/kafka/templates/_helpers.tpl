{{/*
Names are fixed by the mlapi chart contract (no .Chart.Name / nameOverride tricks):
  StatefulSet + client Service  <release>-kafka
  headless Service              <release>-kafka-headless
The release name is cut so that the StatefulSet's name fits 52 characters (its controller
appends a revision hash to make a label value of at most 63); the parent's
mlapi.kafka.fullname uses the same formula.
*/}}
{{- define "kafka.fullname" -}}
{{- printf "%s-kafka" (.Release.Name | trunc 46 | trimSuffix "-") -}}
{{- end -}}

{{- define "kafka.headlessServiceName" -}}
{{- printf "%s-headless" (include "kafka.fullname" .) -}}
{{- end -}}

{{- define "kafka.clusterIdSecretName" -}}
{{- printf "%s-cluster-id" (include "kafka.fullname" .) -}}
{{- end -}}

{{- define "kafka.serviceAccountName" -}}
{{- include "kafka.fullname" . -}}
{{- end -}}

{{/* Fail early instead of producing names Kubernetes rejects (DNS-1035 labels, max 63 chars). */}}
{{- define "kafka.validate" -}}
{{- $headless := include "kafka.headlessServiceName" . -}}
{{- if gt (len $headless) 63 -}}
{{- fail (printf "kafka: release name %q is too long; %q must be at most 63 characters" .Release.Name $headless) -}}
{{- end -}}
{{- end -}}

{{- define "kafka.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: name + instance only (contract). */}}
{{- define "kafka.selectorLabels" -}}
app.kubernetes.io/name: kafka
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Common labels for every object (contract). */}}
{{- define "kafka.labels" -}}
helm.sh/chart: {{ include "kafka.chart" . }}
{{ include "kafka.selectorLabels" . }}
app.kubernetes.io/component: kafka
app.kubernetes.io/part-of: mlapi
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* [registry/]repository:tag[@digest]; the parent's global.imageRegistry replaces the registry. */}}
{{- define "kafka.image" -}}
{{- $global := .Values.global | default dict -}}
{{- $registry := default .Values.image.registry $global.imageRegistry -}}
{{- $ref := .Values.image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end -}}
{{- $ref = printf "%s:%s" $ref (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- if .Values.image.digest }}{{ $ref = printf "%s@%s" $ref .Values.image.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/*
imagePullSecrets: the parent's global.imagePullSecrets, then this chart's imagePullSecrets,
as names or {name: ...}; nothing when both are empty.
*/}}
{{- define "kafka.imagePullSecrets" -}}
{{- $global := .Values.global | default dict -}}
{{- $names := list -}}
{{- range concat ($global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- if kindIs "string" . }}{{ $names = append $names . }}{{ else }}{{ $names = append $names .name }}{{ end -}}
{{- end -}}
{{- with $names | uniq }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{- define "kafka.replicas" -}}
{{- .Values.replicaCount | int -}}
{{- end -}}

{{/* Replication factor for internal and new topics: min(3, replicas). */}}
{{- define "kafka.replicationFactor" -}}
{{- min 3 (include "kafka.replicas" . | int) -}}
{{- end -}}

{{/* min.insync.replicas / transaction.state.log.min.isr: 2 with >= 3 replicas, else 1. */}}
{{- define "kafka.minIsr" -}}
{{- if ge (include "kafka.replicas" . | int) 3 -}}2{{- else -}}1{{- end -}}
{{- end -}}

{{/* FQDN suffix of the pods: <headless>.<namespace>.svc.<clusterDomain> */}}
{{- define "kafka.podDomain" -}}
{{- printf "%s.%s.svc.%s" (include "kafka.headlessServiceName" .) (include "kafka.namespace" .) .Values.clusterDomain -}}
{{- end -}}

{{/* controller.quorum.voters: 0@R-kafka-0.R-kafka-headless.N.svc.cluster.local:9093,... */}}
{{- define "kafka.quorumVoters" -}}
{{- $fullname := include "kafka.fullname" . -}}
{{- $domain := include "kafka.podDomain" . -}}
{{- $voters := list -}}
{{- range $i := until (include "kafka.replicas" . | int) -}}
{{- $voters = append $voters (printf "%d@%s-%d.%s:9093" $i $fullname $i $domain) -}}
{{- end -}}
{{- join "," $voters -}}
{{- end -}}

{{/*
KRaft cluster id. See templates/secret.yaml for why it is derived and not random.
sha256 hex digits are valid base64url characters; 21 of them + "A" is a 22-character
base64url string whose last character carries no set low bits, so Kafka's
Uuid.fromString() decodes it to exactly 16 bytes.
*/}}
{{- define "kafka.clusterId" -}}
{{- if .Values.clusterId -}}
{{- .Values.clusterId -}}
{{- else -}}
{{- printf "%sA" (sha256sum (printf "%s/%s/mlapi-kafka" .Release.Namespace .Release.Name) | trunc 21) -}}
{{- end -}}
{{- end -}}

{{/*
Network policies are on unless global.networkPolicy.enabled is explicitly false.
A missing `global` (standalone render) counts as enabled. Returns "true" or "false".
*/}}
{{- define "kafka.networkPolicyEnabled" -}}
{{- $global := .Values.global | default dict -}}
{{- $np := $global.networkPolicy | default dict -}}
{{- if and (hasKey $np "enabled") (not $np.enabled) -}}false{{- else -}}true{{- end -}}
{{- end -}}

{{/* Render a server.properties value: strings verbatim, numbers/bools without float notation. */}}
{{- define "kafka.propertyValue" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}

{{/*
The namespace of every object: namespaceOverride, then the parent's global.namespaceOverride,
then the release's. The parent chart refuses a namespace other than its own for this chart.
*/}}
{{- define "kafka.namespace" -}}
{{- $global := .Values.global | default dict -}}
{{- .Values.namespaceOverride | default $global.namespaceOverride | default .Release.Namespace -}}
{{- end -}}
