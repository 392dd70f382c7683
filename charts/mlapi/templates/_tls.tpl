{{/*
TLS files from Secrets for an external Redis (rediss://) and an external Kafka (SSL/SASL_SSL):
CA bundles that verify the servers and client certificates for servers that require them.
mlapi.tls.sources lists them once; every pod that talks to Redis or Kafka (api, worker,
feedback and its retrain sidecar, the retrain CronJob) mounts them read-only through
mlapi.caVolume / mlapi.caMount, and configmap.yaml points the MLAPI_*_SSL_* settings at the
files (mlapi.tls.env). Nothing for the bundled Redis and Kafka, which speak plain TCP inside
the namespace.
*/}}
{{- define "mlapi.tls.sources" -}}
{{- $r := .Values.externalRedis }}
{{- $k := .Values.externalKafka }}
{{- if not .Values.redis.enabled }}
{{- with $r.caSecret }}
- name: redis-ca
  secret: {{ . | quote }}
  dir: /etc/mlapi/redis-ca
  files:
    - {key: {{ $r.caSecretKey | quote }}, path: ca.crt, env: MLAPI_REDIS_SSL_CAFILE}
{{- end }}
{{- with $r.clientCertSecret }}
- name: redis-client-cert
  secret: {{ . | quote }}
  dir: /etc/mlapi/redis-client
  files:
    - {key: {{ $r.clientCertSecretCertKey | quote }}, path: tls.crt, env: MLAPI_REDIS_SSL_CERTFILE}
    - {key: {{ $r.clientCertSecretKeyKey | quote }}, path: tls.key, env: MLAPI_REDIS_SSL_KEYFILE}
{{- end }}
{{- end }}
{{- if not .Values.kafka.enabled }}
{{- with $k.caSecret }}
- name: kafka-ca
  secret: {{ . | quote }}
  dir: /etc/mlapi/kafka-ca
  files:
    - {key: {{ $k.caSecretKey | quote }}, path: ca.crt, env: MLAPI_KAFKA_SSL_CAFILE}
{{- end }}
{{- with $k.clientCertSecret }}
- name: kafka-client-cert
  secret: {{ . | quote }}
  dir: /etc/mlapi/kafka-client
  files:
    - {key: {{ $k.clientCertSecretCertKey | quote }}, path: tls.crt, env: MLAPI_KAFKA_SSL_CERTFILE}
    - {key: {{ $k.clientCertSecretKeyKey | quote }}, path: tls.key, env: MLAPI_KAFKA_SSL_KEYFILE}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod volumes of mlapi.tls.sources (one Secret each, only the keys mlapi reads). */}}
{{- define "mlapi.caVolume" -}}
{{- range (include "mlapi.tls.sources" . | fromYamlArray) }}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    items:
      {{- range .files }}
      - key: {{ .key }}
        path: {{ .path }}
      {{- end }}
{{- end }}
{{- end }}

{{/* Their read-only mounts, for every container that talks to Redis or Kafka. */}}
{{- define "mlapi.caMount" -}}
{{- range (include "mlapi.tls.sources" . | fromYamlArray) }}
- name: {{ .name }}
  mountPath: {{ .dir }}
  readOnly: true
{{- end }}
{{- end }}

{{/* ConfigMap entries: the MLAPI_*_SSL_* settings, at the mounted files. */}}
{{- define "mlapi.tls.env" -}}
{{- range $source := (include "mlapi.tls.sources" . | fromYamlArray) }}
{{- range .files }}
{{ .env }}: {{ printf "%s/%s" $source.dir .path | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Combinations that cannot work, named by their values paths. */}}
{{- define "mlapi.tls.validate" -}}
{{- $r := .Values.externalRedis }}
{{- $k := .Values.externalKafka }}
{{- if and (not .Values.redis.enabled) (not (hasPrefix "rediss://" $r.url)) }}
{{- $given := ternary "empty" (printf "a %s:// URL" (splitList "://" $r.url | first)) (not $r.url) }}
{{- range $path := list "caSecret" "clientCertSecret" }}
{{- if get $r $path }}
{{- fail (printf "externalRedis.%s is set but externalRedis.url is %s: TLS files need a rediss:// URL; use rediss:// in externalRedis.url, or unset externalRedis.%s" $path $given $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not .Values.kafka.enabled) $k.clientCertSecret (not (has $k.securityProtocol (list "SSL" "SASL_SSL"))) }}
{{- fail (printf "externalKafka.clientCertSecret is set but externalKafka.securityProtocol is %s: a client certificate needs TLS; set externalKafka.securityProtocol to SSL or SASL_SSL, or unset externalKafka.clientCertSecret" $k.securityProtocol) }}
{{- end }}
{{- end }}
