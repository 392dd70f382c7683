{{/*
The API's public paths: what the HTTPRoute and the Ingress route, and nothing else. /metrics is
not among them (Prometheus scrapes the pods directly, admitted by networkPolicy.metricsFrom).
tests/chart/test_routes.py checks this list against the Flask app's url_map, so a new API path
that is not routed here fails the chart tests. `type` is Prefix (element-wise: /v1 matches /v1
and /v1/predict, never /v1x) or Exact.
*/}}
{{- define "mlapi.publicPaths" -}}
- {path: /v1, type: Prefix}
- {path: /v2, type: Prefix}
- {path: /, type: Exact}
- {path: /predict, type: Exact}
- {path: /feedback, type: Exact}
- {path: /openapi.json, type: Exact}
- {path: /healthz, type: Exact}
- {path: /readyz, type: Exact}
{{- end }}

{{/* The Ingress's hosts: ingress.hosts, or the single ingress.host (both: a render failure). */}}
{{- define "mlapi.ingressHosts" -}}
{{- if .Values.ingress.hosts }}
{{- toYaml .Values.ingress.hosts }}
{{- else }}
- host: {{ .Values.ingress.host | quote }}
{{- end }}
{{- end }}

{{/* The Ingress's tls entries: ingress.tls, or one for ingress.tlsSecretName and ingress.host. */}}
{{- define "mlapi.ingressTLS" -}}
{{- if .Values.ingress.tls }}
{{- toYaml .Values.ingress.tls }}
{{- else if .Values.ingress.tlsSecretName }}
- secretName: {{ .Values.ingress.tlsSecretName | quote }}
  hosts: [{{ required "ingress.tlsSecretName needs ingress.host (the name on the certificate)" .Values.ingress.host | quote }}]
{{- end }}
{{- end }}

{{/*
Peers admitted to the API's port besides `helm test`'s pod: networkPolicy.apiFrom when given;
else, with httpRoute.enabled, the pods of networkPolicy.gatewayNamespace; else none (an Ingress
with no apiFrom fails in mlapi.validate).
*/}}
{{- define "mlapi.apiFrom" -}}
{{- if .Values.networkPolicy.apiFrom }}
{{- toYaml .Values.networkPolicy.apiFrom }}
{{- else if .Values.httpRoute.enabled }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ required "httpRoute.enabled with an empty networkPolicy.apiFrom needs networkPolicy.gatewayNamespace" .Values.networkPolicy.gatewayNamespace | quote }}
{{- end }}
{{- end }}

{{/* "true" when the api Service is reachable from outside the cluster (LoadBalancer, NodePort). */}}
{{- define "mlapi.apiServiceExternal" -}}
{{- if has .Values.api.service.type (list "LoadBalancer" "NodePort") }}true{{ end }}
{{- end }}

{{/*
Fails when an Ingress path would route /metrics: Prefix / or /metrics, or Exact /metrics
(Prefix matching is element-wise and ignores a trailing slash). Called from mlapi.validate.
*/}}
{{- define "mlapi.validateIngressPaths" -}}
{{- range $i, $h := (fromYamlArray (include "mlapi.ingressHosts" .)) }}
{{- range $j, $p := ($h.paths | default list) }}
{{- $trimmed := trimSuffix "/" $p.path }}
{{- if or (and (eq $p.pathType "Prefix") (has $trimmed (list "" "/metrics"))) (eq $trimmed "/metrics") }}
{{- fail (printf "ingress.hosts[%d].paths[%d] (%s %s) would route /metrics publicly: list only the API's paths (leave paths out for all of them: /v1, /v2 and the course pages)" $i $j $p.pathType $p.path) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
