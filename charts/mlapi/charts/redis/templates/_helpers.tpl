{{/*
Names are fixed by the mlapi chart contract: <release>-redis and <release>-redis-headless.
The release name is cut so that the StatefulSet's name fits 52 characters (its controller
appends a revision hash to make a label value of at most 63); the parent's
mlapi.redis.fullname uses the same formula.
*/}}
{{- define "redis.fullname" -}}
{{- printf "%s-redis" (.Release.Name | trunc 46 | trimSuffix "-") -}}
{{- end -}}

{{- define "redis.headlessName" -}}
{{- printf "%s-headless" (include "redis.fullname" .) -}}
{{- end -}}

{{- define "redis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: name + instance only. */}}
{{- define "redis.selectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels for every object (and the pod template). */}}
{{- define "redis.labels" -}}
{{ include "redis.selectorLabels" . }}
app.kubernetes.io/component: redis
app.kubernetes.io/part-of: mlapi
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ include "redis.chart" . }}
{{- end -}}

{{/* Name of the Secret holding the password. */}}
{{- define "redis.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- else -}}
{{- include "redis.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Key inside the Secret holding the password. */}}
{{- define "redis.secretPasswordKey" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecretPasswordKey | default "password" -}}
{{- else -}}
password
{{- end -}}
{{- end -}}

{{/*
Password for the chart-rendered Secret: auth.password, else the value already stored in
Secret <release>-redis (so upgrades keep it), else a random 32-char string.
*/}}
{{- define "redis.password" -}}
{{- if .Values.auth.password -}}
{{- .Values.auth.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" (include "redis.namespace" .) (include "redis.fullname" .) -}}
{{- $data := (get (default dict $existing) "data") | default dict -}}
{{- if hasKey $data "password" -}}
{{- index $data "password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy switch; a missing `global` (standalone render) counts as enabled. */}}
{{- define "redis.networkPolicyEnabled" -}}
{{- $global := .Values.global | default dict -}}
{{- if dig "networkPolicy" "enabled" true $global -}}true{{- end -}}
{{- end -}}

{{/* [registry/]repository:tag[@digest]; the parent's global.imageRegistry replaces the registry. */}}
{{- define "redis.image" -}}
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
{{- define "redis.imagePullSecrets" -}}
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

{{/*
The namespace of every object: namespaceOverride, then the parent's global.namespaceOverride,
then the release's. The parent chart refuses a namespace other than its own for this chart.
*/}}
{{- define "redis.namespace" -}}
{{- $global := .Values.global | default dict -}}
{{- .Values.namespaceOverride | default $global.namespaceOverride | default .Release.Namespace -}}
{{- end -}}
