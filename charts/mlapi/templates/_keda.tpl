{{/* KEDA: what the operator (in its own namespace) needs to read the consumer group's lag. */}}

{{/*
Bootstrap servers for the KEDA operator. It resolves names in its own namespace (usually
`keda`), so the bundled Kafka's client Service is given by its FQDN; an external bootstrap
list is used as given. The app pods keep mlapi.kafkaBootstrap (same namespace).
*/}}
{{- define "mlapi.keda.bootstrapServers" -}}
{{- if .Values.kafka.enabled }}
{{- printf "%s.%s.svc.%s:9092" (include "mlapi.kafka.fullname" .) (include "mlapi.kafka.namespace" .) (.Values.kafka.clusterDomain | default "cluster.local") }}
{{- else }}
{{- .Values.externalKafka.bootstrap }}
{{- end }}
{{- end }}

{{/* The kafka scaler's `sasl` for externalKafka.saslMechanism; empty without SASL. */}}
{{- define "mlapi.keda.sasl" -}}
{{- if include "mlapi.kafkaSasl" . }}
{{- get (dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512") .Values.externalKafka.saslMechanism }}
{{- end }}
{{- end }}

{{/* "true" when the external Kafka is reached over TLS (SSL or SASL_SSL). */}}
{{- define "mlapi.keda.tls" -}}
{{- if and (not .Values.kafka.enabled) (has .Values.externalKafka.securityProtocol (list "SSL" "SASL_SSL")) }}true{{ end }}
{{- end }}

{{/*
The TriggerAuthentication's sources, from exactly what the worker pods read: the SASL
password's Secret and key (mlapi.env), the user name's ConfigMap key (the workers' envFrom;
configMapTargetRef needs KEDA 2.13 or later), the CA bundle's and the client certificate's
Secrets and keys (mlapi.caVolume; the scaler's `cert` and `key` go together). Empty when the
scaler needs none (bundled Kafka, PLAINTEXT, SSL without a CA or client certificate Secret).
*/}}
{{- define "mlapi.keda.authSpec" -}}
{{- $k := .Values.externalKafka }}
{{- $sasl := include "mlapi.kafkaSasl" . }}
{{- $ca := and (include "mlapi.keda.tls" .) $k.caSecret }}
{{- $cert := and (include "mlapi.keda.tls" .) $k.clientCertSecret }}
{{- if or $sasl $ca $cert }}
secretTargetRef:
  {{- if $sasl }}
  - parameter: password
    name: {{ include "mlapi.kafkaPasswordSecret" . }}
    key: {{ include "mlapi.kafkaPasswordKey" . }}
  {{- end }}
  {{- if $ca }}
  - parameter: ca
    name: {{ $k.caSecret }}
    key: {{ $k.caSecretKey }}
  {{- end }}
  {{- if $cert }}
  - parameter: cert
    name: {{ $k.clientCertSecret }}
    key: {{ $k.clientCertSecretCertKey }}
  - parameter: key
    name: {{ $k.clientCertSecret }}
    key: {{ $k.clientCertSecretKeyKey }}
  {{- end }}
{{- end }}
{{- if $sasl }}
configMapTargetRef:
  - parameter: username
    name: {{ include "mlapi.fullname" . }}
    key: MLAPI_KAFKA_SASL_USERNAME
{{- end }}
{{- end }}
