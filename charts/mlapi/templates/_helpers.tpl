{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "mlapi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-mlapi, or the release name alone when it already contains the chart name. */}}
{{- define "mlapi.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<prefix>-<suffix>" within max characters: the prefix is cut, never the suffix, so a long
release name still gives `…-api`, `…-worker-metrics`. Call with (dict "prefix" p "suffix" s
"max" n). Kubernetes' limits: 63 for a Service (a DNS label) and for anything whose name
becomes a label value or a host name; 52 for a StatefulSet or CronJob (the controller appends
11 characters to make a label value of at most 63).
*/}}
{{- define "mlapi.fitName" -}}
{{- $room := sub (int .max) (add1 (len .suffix)) }}
{{- printf "%s-%s" (.prefix | trunc (int $room) | trimSuffix "-") .suffix }}
{{- end }}

{{- define "mlapi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object; selectorLabels are the immutable subset Deployments select on. Built
as maps and merged, so a key is written once: the chart's labels win over commonLabels (a
selector label cannot be changed by a value).
*/}}
{{- define "mlapi.labels" -}}
{{- toYaml (merge (include "mlapi.chartLabels" . | fromYaml) (.Values.commonLabels | default dict)) }}
{{- end }}

{{- define "mlapi.chartLabels" -}}
helm.sh/chart: {{ include "mlapi.chart" . }}
{{ include "mlapi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlapi
{{- end }}

{{- define "mlapi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlapi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Per component: call with (dict "root" $ "component" "api"). */}}
{{- define "mlapi.componentLabels" -}}
{{- $chart := merge (dict "app.kubernetes.io/component" .component) (include "mlapi.chartLabels" .root | fromYaml) }}
{{- toYaml (merge $chart (.root.Values.commonLabels | default dict)) }}
{{- end }}

{{/*
A pod template's labels: the component's, the client labels the Redis and Kafka policies admit
by, then the component's podLabels, then commonLabels (each key once; the first wins).
Call with (dict "root" $ "component" "api" "values" <the component's values>).
*/}}
{{- define "mlapi.podLabels" -}}
{{- $chart := merge (dict "app.kubernetes.io/component" .component) (include "mlapi.chartLabels" .root | fromYaml) }}
{{- $clients := dict "mlapi.io/redis-client" "true" "mlapi.io/kafka-client" "true" }}
{{- toYaml (merge $chart $clients (.values.podLabels | default dict) (.root.Values.commonLabels | default dict)) }}
{{- end }}

{{/* A pod template's annotations: the checksums, then the component's podAnnotations. */}}
{{- define "mlapi.podAnnotations" -}}
{{- toYaml (merge (include "mlapi.checksums" .root | fromYaml) (.values.podAnnotations | default dict)) }}
{{- end }}

{{- define "mlapi.componentSelectorLabels" -}}
{{ include "mlapi.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* <fullname>-<component>; add "max" 52 for a CronJob. */}}
{{- define "mlapi.componentName" -}}
{{- include "mlapi.fitName" (dict "prefix" (include "mlapi.fullname" .root) "suffix" .component "max" (.max | default 63)) }}
{{- end }}

{{/* The Service Prometheus scrapes a worker or the feedback service through (its job label). */}}
{{- define "mlapi.metricsServiceName" -}}
{{- include "mlapi.fitName" (dict "prefix" (include "mlapi.fullname" .root) "suffix" (printf "%s-metrics" .component) "max" 63) }}
{{- end }}

{{/* <fullname>-<suffix> for objects of the whole release (Secrets, policies, the test pod). */}}
{{- define "mlapi.releaseName" -}}
{{- include "mlapi.fitName" (dict "prefix" (include "mlapi.fullname" .root) "suffix" .suffix "max" 63) }}
{{- end }}


{{/* Backing services: the names the subcharts give (their _helpers.tpl), or external. */}}

{{/* The same formulas as the subcharts' redis.fullname and kafka.fullname (a test checks). */}}
{{- define "mlapi.redis.fullname" -}}
{{- include "mlapi.fitName" (dict "prefix" .Release.Name "suffix" "redis" "max" 52) }}
{{- end }}

{{- define "mlapi.kafka.fullname" -}}
{{- include "mlapi.fitName" (dict "prefix" .Release.Name "suffix" "kafka" "max" 52) }}
{{- end }}

{{- define "mlapi.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:6379/0" (include "mlapi.redis.fullname" .) }}
{{- else }}
{{- .Values.externalRedis.url }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the Redis password; empty name when there is none. */}}
{{- define "mlapi.redisPasswordSecret" -}}
{{- if .Values.redis.enabled }}
{{- $auth := .Values.redis.auth | default dict }}
{{- if $auth.existingSecret }}{{ $auth.existingSecret }}{{ else }}{{ include "mlapi.redis.fullname" . }}{{ end }}
{{- else if .Values.externalRedis.existingSecret }}
{{- .Values.externalRedis.existingSecret }}
{{- else if .Values.externalRedis.password }}
{{- printf "%s-external" (include "mlapi.fullname" .) }}
{{- end }}
{{- end }}

{{- define "mlapi.redisPasswordKey" -}}
{{- if .Values.redis.enabled }}
{{- $auth := .Values.redis.auth | default dict }}
{{- default "password" $auth.existingSecretPasswordKey }}
{{- else if .Values.externalRedis.existingSecret }}
{{- .Values.externalRedis.existingSecretPasswordKey }}
{{- else }}redis-password{{ end }}
{{- end }}

{{- define "mlapi.kafkaBootstrap" -}}
{{- if .Values.kafka.enabled }}
{{- printf "%s:9092" (include "mlapi.kafka.fullname" .) }}
{{- else }}
{{- .Values.externalKafka.bootstrap }}
{{- end }}
{{- end }}

{{- define "mlapi.kafkaSasl" -}}
{{- if and (not .Values.kafka.enabled) (hasPrefix "SASL_" .Values.externalKafka.securityProtocol) }}true{{ end }}
{{- end }}

{{- define "mlapi.kafkaPasswordSecret" -}}
{{- if .Values.externalKafka.existingSecret }}{{ .Values.externalKafka.existingSecret }}{{ else }}{{ printf "%s-external" (include "mlapi.fullname" .) }}{{ end }}
{{- end }}

{{- define "mlapi.kafkaPasswordKey" -}}
{{- if .Values.externalKafka.existingSecret }}{{ .Values.externalKafka.existingSecretPasswordKey }}{{ else }}kafka-password{{ end }}
{{- end }}

{{/* Replication of the topics mlapi creates: the bundled brokers up to 3, else 3. */}}
{{- define "mlapi.topicReplication" -}}
{{- if .Values.config.topicReplication }}
{{- .Values.config.topicReplication }}
{{- else if .Values.kafka.enabled }}
{{- min 3 (int .Values.kafka.replicaCount) }}
{{- else }}3{{ end }}
{{- end }}

{{- define "mlapi.externalDatabase" -}}
{{- if or .Values.feedback.database.url .Values.feedback.database.existingSecret }}true{{ end }}
{{- end }}

{{- define "mlapi.databaseSecret" -}}
{{- if .Values.feedback.database.existingSecret }}{{ .Values.feedback.database.existingSecret }}{{ else }}{{ printf "%s-external" (include "mlapi.fullname" .) }}{{ end }}
{{- end }}

{{- define "mlapi.databaseKey" -}}
{{- if .Values.feedback.database.existingSecret }}{{ .Values.feedback.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{/* The chart-made Secret of external credentials is needed when any is given inline. */}}
{{- define "mlapi.externalSecretNeeded" -}}
{{- if or (and (not .Values.redis.enabled) .Values.externalRedis.password (not .Values.externalRedis.existingSecret)) (and (include "mlapi.kafkaSasl" .) .Values.externalKafka.password (not .Values.externalKafka.existingSecret)) (and .Values.feedback.database.url (not .Values.feedback.database.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "mlapi.keysSecret" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecret }}{{ else }}{{ printf "%s-api-keys" (include "mlapi.fullname" .) }}{{ end }}
{{- end }}

{{- define "mlapi.keysKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}keys.json{{ end }}
{{- end }}

{{/* Pod and container security: Pod Security Standards "restricted" plus a read-only root. */}}
{{- define "mlapi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted defaults, then containerSecurityContext over them (its keys win). */}}
{{- define "mlapi.containerSecurityContext" -}}
{{- $default := dict "runAsNonRoot" true "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "capabilities" (dict "drop" (list "ALL")) }}
{{- toYaml (mergeOverwrite $default (deepCopy (.Values.containerSecurityContext | default dict))) }}
{{- end }}

{{/* Environment every mlapi container gets: the ConfigMap, then secrets by reference. */}}
{{- define "mlapi.env" -}}
{{- $secret := include "mlapi.redisPasswordSecret" . }}
{{- if $secret }}
- name: MLAPI_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "mlapi.redisPasswordKey" . }}
{{- end }}
{{- if and (include "mlapi.kafkaSasl" .) (or .Values.externalKafka.password .Values.externalKafka.existingSecret) }}
- name: MLAPI_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mlapi.kafkaPasswordSecret" . }}
      key: {{ include "mlapi.kafkaPasswordKey" . }}
{{- end }}
{{- end }}

{{- define "mlapi.databaseEnv" -}}
{{- if include "mlapi.externalDatabase" . }}
- name: MLAPI_FEEDBACK_DB
  valueFrom:
    secretKeyRef:
      name: {{ include "mlapi.databaseSecret" . }}
      key: {{ include "mlapi.databaseKey" . }}
{{- end }}
{{- end }}

{{/* Annotations that roll the pods when their configuration or secrets change. */}}
{{- define "mlapi.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secrets: {{ include "mlapi.secretInputs" . | sha256sum }}
{{- end }}

{{/*
What the pods' secrets are made from, as JSON (its keys sorted): the same values give the same
checksum in every render and every Deployment (a GitOps sync sees no diff), and a new password,
URL or Secret name rolls every pod that reads it. The rendered secrets.yaml is not hashed: the
admin token in it is random on every `helm template` (the API re-reads the keys file anyway).
A Secret you manage (existingSecret, otel.headersSecret) that changes in place is not seen by
Helm: restart the pods, or let a controller such as Reloader do it (see the chart README).
*/}}
{{- define "mlapi.secretInputs" -}}
{{- $v := .Values }}
{{- $inputs := dict
  "auth" (pick $v.auth "enabled" "existingSecret" "existingSecretKey")
  "redis" (dict "enabled" $v.redis.enabled "auth" ($v.redis.auth | default dict))
  "externalRedis" $v.externalRedis
  "externalKafka" $v.externalKafka
  "database" $v.feedback.database }}
{{- /* Only when used, so that releases without tracing keep their checksums. */}}
{{- $otel := $v.otel | default dict }}
{{- if and $otel.endpoint (dig "headersSecret" "name" "" $otel) }}
{{- $_ := set $inputs "otelHeaders" $otel.headersSecret }}
{{- end }}
{{- toJson $inputs }}
{{- end }}

{{/*
The namespace of every object: namespaceOverride, then global.namespaceOverride (which the
bundled Valkey and Kafka read too), then the release's. mlapi.validate refuses a bundled
subchart in another namespace than the app (their Services and NetworkPolicies are local).
*/}}
{{- define "mlapi.namespace" -}}
{{- $global := .Values.global | default dict }}
{{- .Values.namespaceOverride | default $global.namespaceOverride | default .Release.Namespace }}
{{- end }}

{{- define "mlapi.redis.namespace" -}}
{{- $global := .Values.global | default dict }}
{{- .Values.redis.namespaceOverride | default $global.namespaceOverride | default .Release.Namespace }}
{{- end }}

{{- define "mlapi.kafka.namespace" -}}
{{- $global := .Values.global | default dict }}
{{- .Values.kafka.namespaceOverride | default $global.namespaceOverride | default .Release.Namespace }}
{{- end }}
