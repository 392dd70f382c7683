{{/*
OpenTelemetry traces (src/mlapi/tracing.py): with otel.endpoint set, every app container (api,
worker, feedback, the retrain sidecar or CronJob; not Valkey, Kafka or the `helm test` pod)
gets the standard OTEL_* variables through mlapi.otel.env, and every app pod's NetworkPolicy an
egress rule to the collector (mlapi.otel.egress). Empty otel.endpoint: no variable at all, and
the app never loads the SDK.
*/}}

{{/*
The OTEL_* env entries of one container; call with (dict "root" $ "component" "api"): api,
worker, feedback or retrain (the feedback pod's sidecar, or the CronJob's container with
feedback.retrain.mode=cronjob). The component is the container's name too.
OTEL_SERVICE_NAME is fixed per component (mlapi-api, mlapi-worker, mlapi-feedback,
mlapi-retrain: the app's own defaults), so dashboards and queries carry over between releases;
what tells releases and pods apart goes in OTEL_RESOURCE_ATTRIBUTES: service.namespace and
k8s.namespace.name (the release namespace), the Deployment or CronJob, the pod (name, uid and
node from the downward API, expanded by the kubelet: `$(VAR)` of the variables above it), the
container, and service.instance.id as OpenTelemetry's Kubernetes conventions build it
(`<namespace>.<pod>.<container>`). otel.resourceAttributes is merged over them (its keys win),
its values percent-encoded as the variable's format wants (and `$` doubled for the kubelet).
*/}}
{{- define "mlapi.otel.env" -}}
{{- $root := .root }}
{{- $o := $root.Values.otel }}
{{- if $o.endpoint }}
{{- $ns := include "mlapi.namespace" $root }}
{{- $owner := dict "k8s.deployment.name" (include "mlapi.componentName" (dict "root" $root "component" .component)) }}
{{- if eq .component "retrain" }}
{{- if eq $root.Values.feedback.retrain.mode "cronjob" }}
{{- $owner = dict "k8s.cronjob.name" (include "mlapi.componentName" (dict "root" $root "component" "retrain" "max" 52)) }}
{{- else }}
{{- $owner = dict "k8s.deployment.name" (include "mlapi.componentName" (dict "root" $root "component" "feedback")) }}
{{- end }}
{{- end }}
{{- $attrs := merge (dict
  "service.namespace" $ns
  "service.instance.id" (printf "%s.$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME).%s" $ns .component)
  "k8s.namespace.name" $ns
  "k8s.pod.name" "$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)"
  "k8s.pod.uid" "$(OTEL_RESOURCE_ATTRIBUTES_POD_UID)"
  "k8s.node.name" "$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME)"
  "k8s.container.name" .component) $owner }}
{{- range $key, $value := ($o.resourceAttributes | default dict) }}
{{- $_ := set $attrs $key (include "mlapi.otel.encode" $value) }}
{{- end }}
{{- $pairs := list }}
{{- range $key := keys $attrs | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $attrs $key)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_RESOURCE_ATTRIBUTES_POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
- name: OTEL_RESOURCE_ATTRIBUTES_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_SERVICE_NAME
  value: {{ printf "mlapi-%s" .component | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $o.endpoint | replace "$" "$$" | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
{{- with $o.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- $arg := toString $o.samplerArg }}
{{- if and (hasSuffix "traceidratio" .) $arg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $arg | quote }}
{{- end }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $pairs | quote }}
{{- with (dig "headersSecret" "name" "" $o) }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ dig "headersSecret" "key" "" $o }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A value of OTEL_RESOURCE_ATTRIBUTES: `%`, `,`, `=`, `;`, `"`, `\` and spaces percent-encoded (the
SDKs decode them), `$` doubled so the kubelet does not expand `$(...)` in it.
*/}}
{{- define "mlapi.otel.encode" -}}
{{- toString . | replace "%" "%25" | replace "," "%2C" | replace "=" "%3D" | replace ";" "%3B" | replace "\"" "%22" | replace "\\" "%5C" | replace " " "%20" | replace "$" "$$" }}
{{- end }}

{{/*
The port the app pods connect to, from otel.endpoint: the URL's own, else 443 for https and
4318 for http (OTLP/HTTP's port: a collector Service on port 80 forwards to its pods' 4318,
and NetworkPolicies see the pods' port). otel.networkPolicy.ports replaces it in the policies.
*/}}
{{- define "mlapi.otel.port" -}}
{{- $url := urlParse .Values.otel.endpoint }}
{{- if regexMatch ":[0-9]+$" $url.host }}
{{- regexFind "[0-9]+$" $url.host }}
{{- else if eq $url.scheme "https" }}443
{{- else }}4318
{{- end }}
{{- end }}

{{/*
The egress rule of an app pod's NetworkPolicy to the collector, with otel.endpoint set:
otel.networkPolicy.to (empty: a pod in any namespace) on otel.networkPolicy.ports (empty: the
endpoint's port, mlapi.otel.port).
*/}}
{{- define "mlapi.otel.egress" -}}
{{- $o := .Values.otel }}
{{- if $o.endpoint }}
# The OpenTelemetry collector (otel.endpoint).
- to:
    {{- with (dig "networkPolicy" "to" (list) $o) }}
    {{- toYaml . | nindent 4 }}
    {{- else }}
    - namespaceSelector: {}
    {{- end }}
  ports:
    {{- range ((dig "networkPolicy" "ports" (list) $o) | default (list (include "mlapi.otel.port" .))) }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- end }}

{{/* Combinations that cannot work, named by their values paths. */}}
{{- define "mlapi.otel.validate" -}}
{{- $o := .Values.otel }}
{{- $name := dig "headersSecret" "name" "" $o }}
{{- $key := dig "headersSecret" "key" "" $o }}
{{- if and $name (not $key) }}
{{- fail (printf "otel.headersSecret.name is %s but otel.headersSecret.key is empty: name the key of that Secret whose value is the OTLP headers (e.g. `authorization=Bearer%%20<token>`), or unset otel.headersSecret.name" $name) }}
{{- end }}
{{- if and $key (not $name) }}
{{- fail (printf "otel.headersSecret.key is %s but otel.headersSecret.name is empty: name the Secret that holds the OTLP headers, or unset otel.headersSecret.key" $key) }}
{{- end }}
{{- if $o.endpoint }}
{{- $url := urlParse $o.endpoint }}
{{- if regexMatch "/v1/traces/?$" $url.path }}
{{- fail (printf "otel.endpoint is %s: give the collector's base URL without /v1/traces (e.g. http://otel-collector.observability.svc:4318); the SDK appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT" $o.endpoint) }}
{{- end }}
{{- $port := int (include "mlapi.otel.port" .) }}
{{- if or (lt $port 1) (gt $port 65535) }}
{{- fail (printf "otel.endpoint is %s: its port %d is outside 1-65535" $o.endpoint $port) }}
{{- end }}
{{- end }}
{{- end }}
